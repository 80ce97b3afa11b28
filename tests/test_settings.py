"""Every setting is documented in .env.example, and secrets are generated, never defaulted."""

import re
from pathlib import Path

from gql_server.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_env_example_documents_every_setting() -> None:
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    expected = {name.upper() for name in Settings.model_fields}
    assert expected - documented == set(), f"undocumented settings: {sorted(expected - documented)}"


def test_secret_key_is_generated_per_data_dir_and_persisted(tmp_path: Path) -> None:
    first = Settings(_env_file=None, data_dir=tmp_path / "a")  # type: ignore[call-arg]
    second = Settings(_env_file=None, data_dir=tmp_path / "a")  # type: ignore[call-arg]
    other = Settings(_env_file=None, data_dir=tmp_path / "b")  # type: ignore[call-arg]
    assert first.jwt_secret == second.jwt_secret
    assert first.jwt_secret != other.jwt_secret
    assert len(first.jwt_secret) >= 32
    assert (tmp_path / "a" / "secret_key").stat().st_mode & 0o777 == 0o600
