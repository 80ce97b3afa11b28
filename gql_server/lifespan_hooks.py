"""Registers the domains' lifespan hooks and extra routes with the app (imported by create_app)."""

from __future__ import annotations

from gql_server import app as app_module

# Domains append to app_module.LIFESPAN_HOOKS / app_module.EXTRA_ROUTES here, e.g.:
#   from workers.runtime import in_process_workers
#   app_module.LIFESPAN_HOOKS.append(in_process_workers)

from gql_server.chat.generation import generation_lifespan  # noqa: E402

app_module.LIFESPAN_HOOKS.append(generation_lifespan)

from gql_server.storage.file_sweeper import file_sweeper_lifespan  # noqa: E402

if file_sweeper_lifespan not in app_module.LIFESPAN_HOOKS:
    app_module.LIFESPAN_HOOKS.append(file_sweeper_lifespan)
