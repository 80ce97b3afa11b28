import { useState, type FormEvent } from "react";
import { errorMessage, request } from "../api/client";
import { Alert, Loading, resultMessage } from "../components/ui";
import {
  AddGroupMemberDocument,
  AdminGroupsDocument,
  AdminUsersDocument,
  CreateGroupDocument,
  DeleteGroupDocument,
  RemoveGroupMemberDocument,
  RenameGroupDocument,
  SetGroupExternalNameDocument,
  type GroupFieldsFragment,
} from "../gql/graphql";
import { useAsync } from "../hooks";

type Notice = { tone: "ok" | "error"; text: string } | null;

export function GroupsPage() {
  const groups = useAsync(() => request(AdminGroupsDocument, {}).then((data) => data.accessGroups), []);
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [notice, setNotice] = useState<Notice>(null);

  const create = async (event: FormEvent) => {
    event.preventDefault();
    setNotice(null);
    try {
      const { createGroup: result } = await request(CreateGroupDocument, { name, description: description || null });
      if (result.__typename === "AccessGroup") {
        setNotice({ tone: "ok", text: `Group “${result.name}” created.` });
        setName("");
        setDescription("");
        await groups.reload();
      } else setNotice({ tone: "error", text: resultMessage(result) });
    } catch (caught) {
      setNotice({ tone: "error", text: errorMessage(caught) });
    }
  };

  return (
    <section aria-labelledby="groups-title" className="stack">
      <h1 id="groups-title">Access groups</h1>
      <form className="card row" onSubmit={create} aria-label="New group">
        <label>
          Group name
          <input name="groupName" required value={name} onChange={(event) => setName(event.target.value)} />
        </label>
        <label>
          Description
          <input name="groupDescription" value={description} onChange={(event) => setDescription(event.target.value)} />
        </label>
        <button type="submit" className="primary" disabled={!name.trim()}>
          Create group
        </button>
      </form>
      {notice && <Alert tone={notice.tone}>{notice.text}</Alert>}
      <Alert>{groups.error}</Alert>
      {groups.loading && !groups.data && <Loading what="groups" />}
      {groups.data?.items.length === 0 && <p className="empty">No groups yet. Create one above, then grant it access to a model.</p>}
      {groups.data?.items.map((group) => (
        <GroupCard key={group.id} group={group} onChanged={groups.reload} onNotice={setNotice} />
      ))}
    </section>
  );
}

function GroupCard({
  group,
  onChanged,
  onNotice,
}: {
  group: GroupFieldsFragment;
  onChanged: () => Promise<void>;
  onNotice: (notice: Notice) => void;
}) {
  const [memberQuery, setMemberQuery] = useState("");
  const [candidates, setCandidates] = useState<{ id: string; email: string }[]>([]);
  const [renaming, setRenaming] = useState(false);
  const [newName, setNewName] = useState(group.name);

  const run = async (promise: Promise<{ __typename: string; message?: string }>, success: string) => {
    try {
      const result = await promise;
      if (result.__typename === "AccessGroup" || result.__typename === "GroupDeleted") onNotice({ tone: "ok", text: success });
      else onNotice({ tone: "error", text: resultMessage(result) });
      await onChanged();
    } catch (caught) {
      onNotice({ tone: "error", text: errorMessage(caught) });
    }
  };

  const findUsers = async (event: FormEvent) => {
    event.preventDefault();
    try {
      const { users } = await request(AdminUsersDocument, { search: memberQuery, first: 8, offset: 0 });
      const memberIds = new Set(group.members?.map((member) => member.id));
      setCandidates(users.items.filter((user) => !memberIds.has(user.id)));
      if (users.items.length === 0) onNotice({ tone: "error", text: `No user matches “${memberQuery}”.` });
    } catch (caught) {
      onNotice({ tone: "error", text: errorMessage(caught) });
    }
  };

  return (
    <article className="card stack" aria-label={`Group ${group.name}`} data-group={group.name}>
      <div className="row" style={{ alignItems: "center" }}>
        {renaming ? (
          <form
            className="row"
            style={{ flex: 1 }}
            onSubmit={(event) => {
              event.preventDefault();
              setRenaming(false);
              void run(request(RenameGroupDocument, { groupId: group.id, name: newName }).then((d) => d.renameGroup), "Group renamed.");
            }}
          >
            <label>
              New name
              <input value={newName} onChange={(event) => setNewName(event.target.value)} autoFocus />
            </label>
            <button type="submit">Save</button>
            <button type="button" onClick={() => setRenaming(false)}>Cancel</button>
          </form>
        ) : (
          <h2 style={{ flex: 1, margin: 0 }}>
            {group.name} <span className="muted">· {group.memberCount} member{group.memberCount === 1 ? "" : "s"}</span>
          </h2>
        )}
        <div className="actions">
          <button type="button" className="small" onClick={() => setRenaming(true)}>Rename</button>
          <button
            type="button"
            className="small danger"
            onClick={() => {
              if (window.confirm(`Delete the group “${group.name}”? Its model grants go with it.`)) {
                void run(request(DeleteGroupDocument, { groupId: group.id }).then((d) => d.deleteGroup), "Group deleted.");
              }
            }}
          >
            Delete
          </button>
        </div>
      </div>
      {group.description && <p className="muted" style={{ margin: 0 }}>{group.description}</p>}
      <SyncSetting group={group} run={run} />
      {group.members && group.members.length > 0 ? (
        <ul className="member-list">
          {group.members.map((member) => (
            <li key={member.id}>
              <span>{member.email}</span>
              <button
                type="button"
                className="small"
                aria-label={`Remove ${member.email} from ${group.name}`}
                onClick={() => void run(request(RemoveGroupMemberDocument, { groupId: group.id, userId: member.id }).then((d) => d.removeGroupMember), `Removed ${member.email}.`)}
              >
                Remove
              </button>
            </li>
          ))}
        </ul>
      ) : (
        <p className="muted">No members yet.</p>
      )}
      <form className="row" onSubmit={findUsers}>
        <label>
          Add a member (search by email)
          <input type="search" name="memberSearch" value={memberQuery} onChange={(event) => setMemberQuery(event.target.value)} />
        </label>
        <button type="submit" disabled={!memberQuery.trim()}>Find</button>
      </form>
      {candidates.length > 0 && (
        <ul className="member-list" aria-label="Matching users">
          {candidates.map((candidate) => (
            <li key={candidate.id}>
              <span>{candidate.email}</span>
              <button
                type="button"
                className="small primary"
                aria-label={`Add ${candidate.email} to ${group.name}`}
                onClick={() => {
                  setCandidates([]);
                  setMemberQuery("");
                  void run(request(AddGroupMemberDocument, { groupId: group.id, userId: candidate.id }).then((d) => d.addGroupMember), `Added ${candidate.email}.`);
                }}
              >
                Add
              </button>
            </li>
          ))}
        </ul>
      )}
    </article>
  );
}

/** Which identity-provider group this group mirrors (OIDC group sync), and when it last synced. */
function SyncSetting({
  group,
  run,
}: {
  group: GroupFieldsFragment;
  run: (promise: Promise<{ __typename: string; message?: string }>, success: string) => Promise<void>;
}) {
  const [external, setExternal] = useState(group.externalName ?? "");
  const synced = group.lastSyncedAt ? new Date(group.lastSyncedAt).toLocaleString() : "not yet";
  return (
    <form
      className="row"
      data-testid="group-sync"
      onSubmit={(event) => {
        event.preventDefault();
        const value = external.trim() || null;
        void run(
          request(SetGroupExternalNameDocument, { groupId: group.id, externalName: value }).then((d) => d.setGroupExternalName),
          value ? `“${group.name}” now mirrors the identity provider's group “${value}”.` : `“${group.name}” is no longer synced.`,
        );
      }}
    >
      <p className="muted" style={{ margin: 0, flex: "1 1 100%" }}>
        {group.externalName ? (
          <>
            Synced with the identity provider's group <strong>{group.externalName}</strong> at each sign-in · last sync {synced}
          </>
        ) : (
          <>Not synced with the identity provider: members are managed here.</>
        )}
      </p>
      <label>
        Identity provider group
        <input name="externalName" value={external} maxLength={200} onChange={(event) => setExternal(event.target.value)} />
      </label>
      <button type="submit" className="small" disabled={(group.externalName ?? "") === external.trim()}>
        Save
      </button>
    </form>
  );
}
