"""The engine: pure functions over dnspython values, no HTTP, no database, no network.

    template.parse_template -> render.render_template -> plan.read_scope
        -> (the backend reads those names) -> plan.plan_changes

`lint` checks templates for onboarding, `spf` merges SPFM rules, `safety` bounds what one
apply may touch, `domains` parses the domain names callers send.
"""
