"""Sub-commands of `dcgw`; each module registers one parser."""
