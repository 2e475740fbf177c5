"""The HTTP side: the Starlette application, the protocol's flows and the pages.

`app` is the route table and `runtime` what it holds (config, backends, templates, state). `discovery` answers settings and template queries, `sync` and
`oauth` are the two flows, `auth` signs customers in, `connections` lists what they
applied, `redirect_service` serves REDIR301/302, and `ui` renders the pages. `forms`,
`redirects`, `signature`, `proxies` and `security_headers` are the checks every request meets.
"""
