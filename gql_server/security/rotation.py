"""`ragql rotate-encryption-key`: add a new encryption key and re-encrypt every stored API key.

With the key file (no ENCRYPTION_KEYS): a fresh key is put first in
`<data dir>/encryption_keys`; then every stored API key is re-encrypted with it in one
transaction. Old keys can be deleted from the file afterwards.
With ENCRYPTION_KEYS set, this command cannot edit the environment: it prints a new key
to prepend, and after the operator restarts with it, `--reencrypt-only` re-encrypts.
"""

from __future__ import annotations

import sys

from cryptography.fernet import Fernet

from gql_server.database_setup import open_database
from gql_server.models import repository
from gql_server.security.encryption import ApiKeyCipher, ApiKeyDecryptionError, prepend_key_to_file
from gql_server.settings import Settings


async def reencrypt_api_keys(sessionmaker, cipher: ApiKeyCipher) -> int:  # type: ignore[no-untyped-def]
    """Re-encrypt every stored key with the newest key, all in one transaction."""
    async with sessionmaker.begin() as session:
        models = await repository.models_with_api_keys_for_update(session)
        for model in models:
            try:
                model.api_key_encrypted = cipher.rotate(model.api_key_encrypted or b"")
            except Exception as error:
                raise ApiKeyDecryptionError(
                    f"The API key of model '{model.name}' cannot be decrypted with any configured key; "
                    "nothing was changed. Set that model's key again, then re-run this command."
                ) from error
        return len(models)


async def rotate_encryption_key(settings: Settings, add_key: bool) -> int:
    """Returns the process exit code."""
    if add_key:
        if settings.encryption_keys is not None:
            print(
                "ENCRYPTION_KEYS is set, so the keys live in your environment, not in a file.\n"
                "1. Put this new key FIRST in ENCRYPTION_KEYS (comma separated, keep the old ones):\n"
                f"   {Fernet.generate_key().decode()}\n"
                "2. Restart ragql, then run `ragql rotate-encryption-key --reencrypt-only`.\n"
                "3. Afterwards the old keys can be removed from ENCRYPTION_KEYS.",
                file=sys.stderr,
            )
            return 2
        prepend_key_to_file(settings.data_dir / "encryption_keys")
    cipher = ApiKeyCipher(settings.encryption_key_list())
    database = await open_database(settings, migrate=False, pool_size=1)
    try:
        try:
            count = await reencrypt_api_keys(database.sessionmaker, cipher)
        except ApiKeyDecryptionError as error:
            print(str(error), file=sys.stderr)
            return 1
    finally:
        await database.close()
    print(
        f"Re-encrypted {count} API key(s) with the newest encryption key ({cipher.key_count} key(s) configured)."
    )
    if cipher.key_count > 1:
        print("Old keys are no longer needed by stored values and can be removed.")
    return 0
