import { describe, expect, it } from "vitest";
import { auditDetails, auditTarget } from "./audit";

const entry = (action: string, details: unknown, names: { targetName?: string | null; userEmail?: string | null; groupName?: string | null } = {}) => ({
  action,
  details,
  targetName: names.targetName ?? null,
  userEmail: names.userEmail ?? null,
  groupName: names.groupName ?? null,
});

describe("audit log in words", () => {
  it("names the group or user of a grant instead of their ids", () => {
    const details = { groupId: "6f1c0a4e-0000-4000-8000-000000000001", userId: null };
    expect(auditDetails(entry("model.grant", details, { groupName: "R readers" }))).toBe("to group R readers");
    expect(auditDetails(entry("model.revoke", { groupId: null, userId: "u-1" }, { userEmail: "ann@example.com" }))).toBe("to user ann@example.com");
  });

  it("names the member of a group entry, and says when the account is gone", () => {
    expect(auditDetails(entry("group.add_member", { userId: "u-1" }, { userEmail: "ann@example.com" }))).toBe("member ann@example.com");
    expect(auditDetails(entry("group.remove_member", { userId: "u-1" }))).toBe("member (deleted account)");
  });

  it("lists changed fields and leaves out a name the target already shows", () => {
    expect(auditDetails(entry("model.update", { fields: ["name", "temperature"] }))).toBe("changed: name, temperature");
    expect(auditDetails(entry("group.create", { name: "R readers" }, { targetName: "R readers" }))).toBe("");
    expect(auditDetails(entry("group.rename", { name: "Old" }, { targetName: "New" }))).toBe("name: Old");
  });

  it("never shows a raw id for the target", () => {
    expect(auditTarget({ targetType: "model", targetId: "0f9e", targetName: "R manuals" })).toBe("model R manuals");
    expect(auditTarget({ targetType: "group", targetId: "0f9e", targetName: null })).toBe("group (deleted)");
    expect(auditTarget({ targetType: "system", targetId: null, targetName: null })).toBe("system");
  });
});
