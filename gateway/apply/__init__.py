"""The write path every front end (web flows, API, command line) shares.

    pipeline.prepare_apply (render, read, plan) -> consent -> pipeline.execute_apply
        -> intents.write (write-ahead intent, backend.apply, settle) -> instances (record)

`extensions` carries out the extension records the gateway implements for every backend,
and `aliases` re-resolves flattened apex aliases.
"""
