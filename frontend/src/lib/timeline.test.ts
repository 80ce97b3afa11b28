import { describe, expect, it } from "vitest";
import type { MessageFieldsFragment } from "../gql/graphql";
import { conversationTimeline, type SessionAttachment } from "./timeline";

const message = (id: string, createdAt: string) => ({ id, createdAt }) as MessageFieldsFragment;
const file = (id: string, createdAt: string) => ({ id, createdAt, filename: `${id}.csv`, status: "READY" }) as SessionAttachment;

describe("conversation timeline", () => {
  it("puts each attached file where it was attached, among the messages", () => {
    const items = conversationTimeline(
      [message("q1", "2026-01-01T10:00:00Z"), message("a1", "2026-01-01T10:00:01Z"), message("q2", "2026-01-01T10:05:00Z")],
      [file("late", "2026-01-01T10:09:00Z"), file("parts", "2026-01-01T10:02:00Z")],
    );
    expect(items.map((item) => (item.kind === "message" ? item.message.id : `file:${item.attachment.id}`))).toEqual(["q1", "a1", "file:parts", "q2", "file:late"]);
  });

  it("shows the files of a chat without messages", () => {
    const items = conversationTimeline([], [file("only", "2026-01-01T10:00:00Z")]);
    expect(items).toEqual([{ kind: "attachment", attachment: file("only", "2026-01-01T10:00:00Z") }]);
  });
});
