"""compose.yml can't run here (no Docker engine); check it parses and has the right shape."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_compose_file_names_the_services_with_healthchecks_and_volumes() -> None:
    compose = yaml.safe_load((ROOT / "compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "ollama", "api", "worker"}
    assert services["postgres"]["image"].startswith("pgvector/pgvector:")
    for name, service in services.items():
        assert "healthcheck" in service, f"{name} has no healthcheck"
    # The API and the worker run the same image, with the same settings.
    assert services["api"]["image"] == services["worker"]["image"]
    assert services["api"]["command"][:2] == ["ragql", "serve"]
    assert services["worker"]["command"] == ["ragql", "worker"]
    assert services["api"]["environment"] == services["worker"]["environment"]
    environment = services["api"]["environment"]
    assert environment["DATABASE_URL"].startswith("postgresql://")
    assert environment["REDIS_URL"].startswith("redis://redis:")
    named_volumes = set(compose["volumes"])
    assert {"postgres-data", "redis-data", "ollama-data", "ragql-files"} <= named_volumes
    assert any(v.startswith("postgres-data:") for v in services["postgres"]["volumes"])
    assert services["api"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_dockerfile_installs_cpu_torch_first() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.index("torch==2.13.0") < dockerfile.index("pip install -e .")
