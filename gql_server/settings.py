"""Settings read from environment variables and `.env` (see `.env.example`)."""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("ragql", appauthor=False))


class Settings(BaseSettings):
    # populate_by_name: the knobs with two environment names (below) can still be passed
    # by field name, as Settings(task_queue=...).
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: SecretStr | None = None
    redis_url: str | None = None
    secret_key: SecretStr | None = None
    # Fernet keys for provider API keys, newest first, comma separated. When unset a key
    # is generated and persisted in the data dir (see gql_server/security/encryption.py).
    encryption_keys: SecretStr | None = None

    access_token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    refresh_token_days: int = Field(default=30, ge=1, le=365)

    superadmin_email: str = "admin@localhost"
    superadmin_password: SecretStr | None = None

    signup_enabled: bool = True
    # Email + password log-in (logIn, signUp). False: only OIDC signs people in; the
    # superadmin still has the CLI (`ragql set-password`, `ragql create-superadmin`).
    password_login_enabled: bool = True

    # --- OpenID Connect log-in (gql_server/auth/oidc.py); on when OIDC_ISSUER_URL is set.
    # The issuer; discovery reads <issuer>/.well-known/openid-configuration.
    oidc_issuer_url: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_scopes: str = "openid email profile"
    # The ID token / userinfo claim listing the user's IdP groups (a list of strings).
    oidc_groups_claim: str = "groups"
    # IdP groups whose members are administrators (comma-separated); empty: roles are not synced.
    oidc_admin_groups: str = ""
    # The log-in button says "Sign in with <OIDC_DISPLAY_NAME>".
    oidc_display_name: str = "single sign-on"
    # Create an account at the first OIDC log-in of someone unknown; false: only linked accounts.
    oidc_auto_create_users: bool = True
    # Link a first OIDC log-in to an existing local account with the same email, when the IdP
    # says the email is verified. False: such a log-in is refused (never linked by email alone).
    oidc_link_by_email: bool = False
    # The redirect URI registered at the IdP; unset: <this server>/auth/oidc/callback as the
    # request reached it (set it behind a proxy that changes the scheme or host).
    oidc_redirect_uri: str | None = None
    max_upload_mb: int = Field(default=250, ge=1, le=16 * 1024)
    keep_original_files: bool = True
    embedding_model: str = "all-MiniLM-L6-v2"
    # "onnx" (default): the bundled model exported once to ONNX, run by onnxruntime (same
    # vectors as torch, ~2-3x faster on CPU); "onnx-int8": int8-quantized (cosine ~0.99);
    # "torch": sentence-transformers itself.
    embedding_backend: Literal["torch", "onnx", "onnx-int8"] = "onnx"
    # The backend of the semantic splitter's sentence pass, which only decides where
    # chunks break (the stored chunk vectors always come from EMBEDDING_BACKEND):
    # "onnx-int8" (default, ~1.6x faster; breakpoints barely move), or "same".
    chunking_embedding_backend: Literal["same", "torch", "onnx", "onnx-int8"] = "onnx-int8"

    migrate_on_start: bool = True
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_json: bool = False

    login_attempts_per_account: int = 5
    login_attempts_per_address: int = 20
    login_window_seconds: int = 300
    # Argon2 hashing/verifying runs in a bounded thread pool (never on the event loop).
    # Default: one core fewer than the machine has (at least 1), so a log-in storm leaves a
    # core to the event loop. Measured on 2 cores (bench/login_storm.py, 30-way storm):
    # 2 threads /healthz p99 128.7 ms, 1 thread 39.0 ms, with the same storm duration
    # (4.3-5.2 s) — Argon2 here is memory-bound, a second thread bought no throughput.
    password_hashing_threads: int = Field(
        default_factory=lambda: max(1, (os.cpu_count() or 2) - 1), ge=1, le=64
    )
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (comma-separated IPs
    # or CIDRs, e.g. "10.0.0.5,172.16.0.0/12"). Empty: none, so the per-address log-in
    # limit always counts the connecting address.
    trusted_proxies: str = ""

    max_query_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 2000
    # Largest GraphQL document (the query text, not its variables), in KB: a long comment or
    # string is one token that graphql-core's lexer walks character by character (a 1 MB
    # comment took 0.2–0.7 s of event loop); real documents are a few KB.
    max_document_kb: int = Field(default=32, ge=1, le=1024)
    # Largest non-multipart request body (JSON GraphQL requests) and largest non-file part
    # of a multipart upload, in KB; bigger ones get 413 before being read.
    max_request_body_kb: int = Field(default=1024, ge=16, le=1024 * 1024)
    # A request body that sends nothing for this long is dropped (408).
    request_body_timeout_seconds: float = Field(default=30.0, gt=0)

    # Provider base URLs on loopback or private networks (Ollama on localhost, a vLLM box
    # on the LAN) are refused unless this is true; link-local and cloud metadata addresses
    # are always refused.
    allow_private_provider_urls: bool = False

    # Chat attachments a user may keep, in MB in total (model documents are not counted).
    attachment_quota_mb_per_user: int = Field(default=500, ge=1)
    # Usage quotas for a user whom neither a per-user quota nor any of their groups' quotas
    # limits (see README "Usage quotas"). Unset: no limit.
    quota_default_messages_per_day: int | None = Field(default=None, ge=0, le=2_000_000_000)
    quota_default_tokens_per_day: int | None = Field(default=None, ge=0, le=2_000_000_000)
    quota_default_tokens_per_month: int | None = Field(default=None, ge=0, le=2_000_000_000)
    # CSV/spreadsheet shape limits: wider tables or bigger cells fail with a clear message.
    csv_max_columns: int = Field(default=512, ge=1)
    csv_max_cell_chars: int = Field(default=65_536, ge=16)
    # OCR (Tesseract) of images and of PDF pages without a text layer (issue 13). Off:
    # such PDFs end READY with a warning and images are refused with a reason.
    ocr_enabled: bool = True
    ocr_languages: str = Field(default="eng", pattern=r"^[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)*$")
    ocr_max_image_pixels: int = Field(default=60_000_000, ge=1_000_000)
    ocr_max_image_pages: int = Field(default=500, ge=1)

    generation_timeout_seconds: float = 300.0

    # --- Tuning knobs: the defaults are right for most installs. Each also answers to its
    # older RAGQL_-prefixed environment name (the second alias), so existing setups keep working.
    # Where the ONNX export of the embedding model is cached (None: the user cache dir's
    # ragql/onnx, e.g. ~/.cache/ragql/onnx).
    embedding_cache_dir: Path | None = Field(
        default=None, validation_alias=AliasChoices("EMBEDDING_CACHE_DIR", "RAGQL_EMBEDDING_CACHE_DIR")
    )
    # Padded tokens per onnxruntime run: bounds its working memory (64 x 256-token inputs
    # would pin ~1 GB in its arena) at no measurable cost in speed.
    onnx_batch_tokens: int = Field(
        default=4096, ge=1, validation_alias=AliasChoices("ONNX_BATCH_TOKENS", "RAGQL_ONNX_BATCH_TOKENS")
    )
    # CPU threads of one embedding model (torch or onnxruntime), at most the core count:
    # more only adds contention with the PDF reader and the event loop.
    embedding_threads: int = Field(
        default=2, ge=1, le=256, validation_alias=AliasChoices("EMBEDDING_THREADS", "RAGQL_TORCH_THREADS")
    )
    # Documents one process ingests at once, per lane (model documents, chat attachments).
    # Default: the cores this process may use divided by EMBEDDING_THREADS (each document's
    # embedding runs on that many threads, its PDF reader beside them), at least 1, so one
    # lane's documents side by side keep every core busy without fighting over them — 1 on
    # 2 cores, 4 on 8 (see `default_ingest_concurrency`).
    ingest_concurrency: int = Field(
        default_factory=lambda data: default_ingest_concurrency(data.get("embedding_threads", 2)), ge=1, le=16
    )
    # Redis stream of the ingestion tasks (chat attachments use "<name>:attachments").
    # Different names let test runs, or several installs on one Redis, not share a stream.
    task_queue: str = Field(
        default="ragql:tasks", min_length=1, validation_alias=AliasChoices("TASK_QUEUE", "RAGQL_TASK_QUEUE")
    )
    # A Redis-mode worker's lease on the task it runs: a dead worker's document is taken
    # over about this long after its death (workers/broker.py).
    task_lease_seconds: float = Field(
        default=60.0, gt=0, validation_alias=AliasChoices("TASK_LEASE_SECONDS", "RAGQL_TASK_LEASE_SECONDS")
    )

    @field_validator("data_dir", "embedding_cache_dir", mode="before")
    @classmethod
    def _expand(cls, value: object) -> object:
        if isinstance(value, str):
            return Path(value).expanduser()
        return value

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer_url and self.oidc_client_id)

    @property
    def oidc_admin_group_names(self) -> frozenset[str]:
        return frozenset(name.strip() for name in self.oidc_admin_groups.split(",") if name.strip())

    @property
    def embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def database_dir(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    @cached_property
    def jwt_secret(self) -> bytes:
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        return load_or_create_secret(self.data_dir / "secret_key").encode()

    def encryption_key_list(self) -> list[str]:
        from gql_server.security.encryption import load_key_file, parse_keys

        if self.encryption_keys is not None:
            return parse_keys(self.encryption_keys.get_secret_value())
        return load_key_file(self.data_dir / "encryption_keys")


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. a container's cpuset), or
    the machine's count where affinity is not available."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_ingest_concurrency(embedding_threads: int) -> int:
    return max(1, min(16, usable_cores() // max(1, embedding_threads)))


def load_or_create_secret(path: Path, nbytes: int = 48) -> str:
    """Read a secret from `path`, creating it (mode 0600) on first use.

    Never a hard-coded default: a fresh install gets its own random secret that
    survives restarts, so issued tokens stay valid across a `make serve` restart.
    """
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(nbytes)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first
        return path.read_text().strip()
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)
    return value
