"""The embedded server's own settings (gql_server/db/embedded.py)."""

from __future__ import annotations

from pathlib import Path

from gql_server.db.embedded import EmbeddedPostgres, default_shared_buffers_mb, write_server_settings


def test_settings_file_is_included_once_and_rewritten(tmp_path: Path) -> None:
    (tmp_path / "postgresql.conf").write_text("max_connections = 100\n")
    write_server_settings(tmp_path, 256)
    write_server_settings(tmp_path, 512)
    config = (tmp_path / "postgresql.conf").read_text()
    assert config.count("include_if_exists = 'ragql.conf'") == 1
    assert config.startswith("max_connections = 100\n")
    assert "shared_buffers = '512MB'" in (tmp_path / "ragql.conf").read_text()


def test_no_config_file_means_nothing_is_written(tmp_path: Path) -> None:
    write_server_settings(tmp_path, 256)
    assert not (tmp_path / "ragql.conf").exists()


def test_the_running_server_uses_them(postgres_server: EmbeddedPostgres) -> None:
    expected = default_shared_buffers_mb()
    assert 128 <= expected <= 1024
    output = postgres_server.psql(
        "SELECT setting::bigint * 8 / 1024 AS mb FROM pg_settings WHERE name = 'shared_buffers';"
    )
    assert str(expected) in output.split()
