"""Matrix entries for users, access groups, models, grants and the audit log (issue 3)."""

from __future__ import annotations

import uuid
from typing import Any

from tests.authz_matrix import MatrixEntry, Outcome, World, expect

Out = Outcome
TYPENAME = "{ __typename }"


def _vars(**builders: Any) -> Any:
    """Variables from world objects: name=("get"|"fresh", object name) or a literal."""

    async def build(world: World, actor: str) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for key, spec in builders.items():
            if isinstance(spec, tuple) and spec[0] in ("get", "fresh"):
                values[key] = await world.id_of(spec[1], fresh=spec[0] == "fresh")
            elif callable(spec):
                values[key] = spec()
            else:
                values[key] = spec
        return values

    return build


def _unique(prefix: str) -> Any:
    return lambda: f"{prefix} {uuid.uuid4().hex[:10]}"


def _typename(expected: str) -> Any:
    def check(value: Any, world: World, actor: str) -> None:
        assert value["__typename"] == expected, value

    return check


async def _models_visible(value: Any, world: World, actor: str) -> None:
    names = {item["name"] for item in value["items"]}
    own = (await world.get("model")).name
    foreign = (await world.get("foreign_model")).name
    if actor == "user":
        assert own not in names and foreign not in names, names
    elif actor == "member":
        assert own in names and foreign not in names, names
    else:
        assert own in names and foreign in names, names


async def _member_sees_group(value: Any, world: World, actor: str) -> None:
    names = {group["name"] for group in value}
    group = await world.get("member_group")
    assert (group.name in names) == (actor == "member"), names


async def _revoke_vars(world: World, actor: str) -> dict[str, Any]:
    model = await world.fresh("model_with_group_grant")
    return {"modelId": str(model.id), "groupId": str(model.matrix_group_id)}


async def _remove_member_vars(world: World, actor: str) -> dict[str, Any]:
    group = await world.fresh("group_with_member")
    return {"groupId": str(group.id), "userId": str(group.matrix_member_id)}


async def _superadmin_target(world: World, actor: str) -> dict[str, Any]:
    return {"userId": str(world.users["superadmin"].id)}


FOREIGN_MODEL = {
    "anonymous": Out.UNAUTHENTICATED,
    "user": Out.HIDDEN,
    "member": Out.HIDDEN,
    "admin": Out.ALLOWED,
    "superadmin": Out.ALLOWED,
    "chat_token": Out.ALLOWED,
}
ADMIN_REFUSED_SUPERADMIN_ALLOWED = {**expect.admin_only(), "admin": Out.REFUSED}
NOBODY_MAY = {**expect.admin_only(), "admin": Out.REFUSED, "superadmin": Out.REFUSED}
ADMINS_GET_NOT_FOUND = {**expect.admin_only(), "admin": Out.HIDDEN, "superadmin": Out.HIDDEN}
# Admin-only fields of a model the caller may use: an error for non-admins.
ADMIN_FIELDS = {**expect.admin_only(), "user": Out.HIDDEN}

USER_RESULT = "{ __typename ... on Error { message } }"

ENTRIES = [
    # --- queries ------------------------------------------------------------------------
    MatrixEntry(
        field="users",
        kind="query",
        document="query { users(first: 10) { totalCount items { id email groups { id } } } }",
        expect=expect.admin_only(),
    ),
    MatrixEntry(
        field="accessGroups",
        kind="query",
        document="query { accessGroups { totalCount items { id name memberCount members { id } } } }",
        expect=expect.admin_only(),
    ),
    MatrixEntry(
        field="myGroups",
        kind="query",
        document="query { myGroups { id name memberCount } }",
        expect=expect.signed_in(),
        check=_member_sees_group,
    ),
    MatrixEntry(
        field="models",
        kind="query",
        document="query { models(first: 100) { totalCount items { id name documentCount } } }",
        expect=expect.signed_in(),
        check=_models_visible,
        variables=_vars(_ensure_own=("get", "model"), _ensure_foreign=("get", "foreign_model")),
    ),
    MatrixEntry(
        field="visibleModels",
        kind="subscription",
        document="subscription { visibleModels(first: 100) { totalCount items { id name documentCount } } }",
        expect=expect.signed_in(),
        check=_models_visible,  # the same list as the models query, for every caller
        variables=_vars(_ensure_own=("get", "model"), _ensure_foreign=("get", "foreign_model")),
    ),
    MatrixEntry(
        field="model",
        kind="query",
        case="usable model",
        document="query($id: UUID!) { model(id: $id) { id name documentCount } }",
        variables=_vars(id=("get", "model")),
        expect=expect.model_users(Out.HIDDEN),
    ),
    MatrixEntry(
        field="model",
        kind="query",
        case="foreign model",
        document="query($id: UUID!) { model(id: $id) { id name } }",
        variables=_vars(id=("get", "foreign_model")),
        expect=FOREIGN_MODEL,
    ),
    MatrixEntry(
        field="model",
        kind="query",
        case="unknown id",
        document="query($id: UUID!) { model(id: $id) { id } }",
        variables=_vars(id=lambda: str(uuid.uuid4())),
        expect={
            **expect.signed_in(),
            "user": Out.HIDDEN,
            "member": Out.HIDDEN,
            "admin": Out.HIDDEN,
            "superadmin": Out.HIDDEN,
            "chat_token": Out.HIDDEN,
        },
    ),
    MatrixEntry(
        field="model",
        kind="query",
        case="admin-only fields",
        document="""query($id: UUID!) { model(id: $id) { id baseUrl apiKeySet apiKeyLast4 systemPrompt
            temperature maxOutputTokens contextWindowTokens topK hybridSearch relevanceThreshold
            grants { id group { id } user { id } } } }""",
        variables=_vars(id=("get", "model")),
        # user: the model is hidden (null, no error); member: FORBIDDEN on the admin fields.
        expect=ADMIN_FIELDS,
    ),
    MatrixEntry(
        field="auditLog",
        kind="query",
        document="query { auditLog(first: 5) { totalCount items { action actorEmail details } } }",
        expect=expect.superadmin_only(),
    ),
    # --- self-service -------------------------------------------------------------------
    MatrixEntry(
        field="updateProfile",
        kind="mutation",
        document='mutation { updateProfile(displayName: "Matrix") { __typename } }',
        expect=expect.signed_in(),
        check=_typename("User"),
    ),
    MatrixEntry(
        field="changePassword",
        kind="mutation",
        # A wrong old password: authorization passes, nothing changes (typed InvalidInput).
        document="""mutation { changePassword(oldPassword: "wrong-password-1", newPassword: "new-password-12")
            { __typename } }""",
        # A personal access token never changes the password (@isInteractiveSession).
        expect={**expect.signed_in(), "chat_token": Out.FORBIDDEN},
        check=_typename("InvalidInput"),
    ),
    # --- user administration ------------------------------------------------------------
    MatrixEntry(
        field="promoteUser",
        kind="mutation",
        document=f"mutation($userId: UUID!) {{ promoteUser(userId: $userId) {USER_RESULT} }}",
        variables=_vars(userId=("fresh", "plain_user")),
        expect=expect.admin_only(),
        check=_typename("User"),
    ),
    MatrixEntry(
        field="demoteUser",
        kind="mutation",
        case="admin target",
        document=f"mutation($userId: UUID!) {{ demoteUser(userId: $userId) {USER_RESULT} }}",
        variables=_vars(userId=("fresh", "admin_user")),
        expect=ADMIN_REFUSED_SUPERADMIN_ALLOWED,
    ),
    MatrixEntry(
        field="demoteUser",
        kind="mutation",
        case="superadmin target",
        document=f"mutation($userId: UUID!) {{ demoteUser(userId: $userId) {USER_RESULT} }}",
        variables=_superadmin_target,
        expect=NOBODY_MAY,
    ),
    MatrixEntry(
        field="deactivateUser",
        kind="mutation",
        case="plain user target",
        document=f"mutation($userId: UUID!) {{ deactivateUser(userId: $userId) {USER_RESULT} }}",
        variables=_vars(userId=("fresh", "plain_user")),
        expect=expect.admin_only(),
    ),
    MatrixEntry(
        field="deactivateUser",
        kind="mutation",
        case="admin target",
        document=f"mutation($userId: UUID!) {{ deactivateUser(userId: $userId) {USER_RESULT} }}",
        variables=_vars(userId=("fresh", "admin_user")),
        expect=ADMIN_REFUSED_SUPERADMIN_ALLOWED,
    ),
    MatrixEntry(
        field="deactivateUser",
        kind="mutation",
        case="superadmin target",
        document=f"mutation($userId: UUID!) {{ deactivateUser(userId: $userId) {USER_RESULT} }}",
        variables=_superadmin_target,
        expect=NOBODY_MAY,
    ),
    MatrixEntry(
        field="reactivateUser",
        kind="mutation",
        document=f"mutation($userId: UUID!) {{ reactivateUser(userId: $userId) {USER_RESULT} }}",
        variables=_vars(userId=("fresh", "plain_user")),
        expect=expect.admin_only(),
    ),
    MatrixEntry(
        field="reactivateUser",
        kind="mutation",
        case="unknown id",
        document=f"mutation($userId: UUID!) {{ reactivateUser(userId: $userId) {USER_RESULT} }}",
        variables=_vars(userId=lambda: str(uuid.uuid4())),
        expect=ADMINS_GET_NOT_FOUND,
    ),
    # --- groups ---------------------------------------------------------------------------
    MatrixEntry(
        field="createGroup",
        kind="mutation",
        document=f"mutation($name: String!) {{ createGroup(name: $name) {TYPENAME} }}",
        variables=_vars(name=_unique("matrix group")),
        expect=expect.admin_only(),
        check=_typename("AccessGroup"),
    ),
    MatrixEntry(
        field="renameGroup",
        kind="mutation",
        document=f"mutation($id: UUID!, $name: String!) {{ renameGroup(groupId: $id, name: $name) {TYPENAME} }}",
        variables=_vars(id=("fresh", "group"), name=_unique("renamed")),
        expect=expect.admin_only(),
        check=_typename("AccessGroup"),
    ),
    MatrixEntry(
        field="deleteGroup",
        kind="mutation",
        document=f"mutation($id: UUID!) {{ deleteGroup(groupId: $id) {TYPENAME} }}",
        variables=_vars(id=("fresh", "group")),
        expect=expect.admin_only(),
        check=_typename("GroupDeleted"),
    ),
    MatrixEntry(
        field="addGroupMember",
        kind="mutation",
        document=f"mutation($g: UUID!, $u: UUID!) {{ addGroupMember(groupId: $g, userId: $u) {TYPENAME} }}",
        variables=_vars(g=("fresh", "group"), u=("fresh", "plain_user")),
        expect=expect.admin_only(),
        check=_typename("AccessGroup"),
    ),
    MatrixEntry(
        field="removeGroupMember",
        kind="mutation",
        document="""mutation($groupId: UUID!, $userId: UUID!) {
            removeGroupMember(groupId: $groupId, userId: $userId) { __typename } }""",
        variables=_remove_member_vars,
        expect=expect.admin_only(),
        check=_typename("AccessGroup"),
    ),
    # --- models ---------------------------------------------------------------------------
    MatrixEntry(
        field="createModel",
        kind="mutation",
        document=f"mutation($name: String!) {{ createModel(input: {{name: $name}}) {TYPENAME} }}",
        variables=_vars(name=_unique("matrix created")),
        expect=expect.admin_only(),
        check=_typename("Model"),
    ),
    MatrixEntry(
        field="updateModel",
        kind="mutation",
        document=f'mutation($id: UUID!) {{ updateModel(id: $id, input: {{description: "x"}}) {TYPENAME} }}',
        variables=_vars(id=("fresh", "foreign_model")),
        expect=expect.admin_only(),
        check=_typename("Model"),
    ),
    MatrixEntry(
        field="updateModel",
        kind="mutation",
        case="unknown id",
        document=f'mutation($id: UUID!) {{ updateModel(id: $id, input: {{description: "x"}}) {TYPENAME} }}',
        variables=_vars(id=lambda: str(uuid.uuid4())),
        expect=ADMINS_GET_NOT_FOUND,
    ),
    MatrixEntry(
        field="deleteModel",
        kind="mutation",
        document=f"mutation($id: UUID!) {{ deleteModel(id: $id) {TYPENAME} }}",
        variables=_vars(id=("fresh", "foreign_model")),
        expect=expect.admin_only(),
        check=_typename("ModelDeleted"),
    ),
    MatrixEntry(
        field="grantModelAccess",
        kind="mutation",
        document=f"""mutation($m: UUID!, $g: UUID!) {{
            grantModelAccess(modelId: $m, groupId: $g) {TYPENAME} }}""",
        variables=_vars(m=("fresh", "foreign_model"), g=("fresh", "group")),
        expect=expect.admin_only(),
        check=_typename("ModelAccessGrant"),
    ),
    MatrixEntry(
        field="revokeModelAccess",
        kind="mutation",
        document="""mutation($modelId: UUID!, $groupId: UUID!) {
            revokeModelAccess(modelId: $modelId, groupId: $groupId) { __typename } }""",
        variables=_revoke_vars,
        expect=expect.admin_only(),
        check=_typename("ModelAccessRevoked"),
    ),
    MatrixEntry(
        field="testModelConnection",
        kind="mutation",
        document="""mutation($id: UUID!) { testModelConnection(modelId: $id) {
            __typename ... on ModelConnectionResult { ok message } } }""",
        variables=_vars(id=("get", "model")),
        expect=expect.admin_only(),
        check=_typename("ModelConnectionResult"),
    ),
]
