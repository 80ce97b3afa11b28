"""Registers the domains' lifespan hooks and extra routes with the app (imported by create_app)."""

from __future__ import annotations

from gql_server import app as app_module
from gql_server.chat.generation import generation_lifespan
from gql_server.documents.downloads import download_route
from workers.runtime import in_process_workers

# Domains append to app_module.LIFESPAN_HOOKS / app_module.EXTRA_ROUTES here.
if in_process_workers not in app_module.LIFESPAN_HOOKS:
    app_module.LIFESPAN_HOOKS.append(in_process_workers)
if download_route not in app_module.EXTRA_ROUTES:
    app_module.EXTRA_ROUTES.append(download_route)
if generation_lifespan not in app_module.LIFESPAN_HOOKS:
    app_module.LIFESPAN_HOOKS.append(generation_lifespan)

from gql_server.storage.file_sweeper import file_sweeper_lifespan

if file_sweeper_lifespan not in app_module.LIFESPAN_HOOKS:
    app_module.LIFESPAN_HOOKS.append(file_sweeper_lifespan)

from gql_server.monitoring import lag_monitor_lifespan, metrics_reset_route, metrics_route

if lag_monitor_lifespan not in app_module.LIFESPAN_HOOKS:
    app_module.LIFESPAN_HOOKS.append(lag_monitor_lifespan)
for route_factory in (metrics_route, metrics_reset_route):
    if route_factory not in app_module.EXTRA_ROUTES:
        app_module.EXTRA_ROUTES.append(route_factory)
