"""The zone and template the OAuth tests share: a TXT at the apex and a CNAME at a chosen host."""

ZONE_TEXT = """\
$ORIGIN {origin}.
$TTL 3600
@ IN SOA ns1.example.com. hostmaster.example.com. 2024010101 3600 600 86400 300
@ IN NS ns1.example.com.
ns1 IN A 192.0.2.53
www IN A 192.0.2.80
"""
RECORDS = [{"type": "TXT", "host": "@", "data": "v=%value%", "ttl": 3600, "txtConflictMatchingMode": "None"},
           {"type": "CNAME", "host": "%sub%", "pointsTo": "target.example.net", "ttl": 3600}]
