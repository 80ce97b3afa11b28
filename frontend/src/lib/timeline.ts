import type { MessageFieldsFragment, SessionFieldsFragment } from "../gql/graphql";

export type SessionAttachment = SessionFieldsFragment["attachments"][number];

export type TimelineItem =
  | { kind: "message"; message: MessageFieldsFragment }
  | { kind: "attachment"; attachment: SessionAttachment };

/**
 * The conversation as it happened: messages and the files attached to the chat, by time.
 * An attachment shows where it was attached (before the questions asked after it); a tie
 * puts the file first, since a question sent with it is stored just after the upload.
 */
export function conversationTimeline(messages: readonly MessageFieldsFragment[], attachments: readonly SessionAttachment[]): TimelineItem[] {
  const items: TimelineItem[] = [];
  const files = [...attachments].sort((a, b) => Date.parse(a.createdAt) - Date.parse(b.createdAt));
  let next = 0;
  for (const message of messages) {
    while (next < files.length && Date.parse(files[next].createdAt) <= Date.parse(message.createdAt)) {
      items.push({ kind: "attachment", attachment: files[next] });
      next += 1;
    }
    items.push({ kind: "message", message });
  }
  for (; next < files.length; next += 1) items.push({ kind: "attachment", attachment: files[next] });
  return items;
}
