import { describe, expect, it } from "vitest";
import { applyStreamEvent, initialStream, type StreamEventInput } from "./stream";

type Source = { index: number };
const token = (seq: number, delta: string): StreamEventInput<Source> => ({ kind: "TOKEN", seq, delta });
const run = (events: StreamEventInput<Source>[], start = initialStream<Source>()) => events.reduce(applyStreamEvent, start);

describe("stream reassembly", () => {
  it("joins token deltas in seq order", () => {
    const state = run([{ kind: "SOURCES", seq: 1, sources: [{ index: 1 }] }, token(2, "Hello"), token(4, "!"), token(3, " world")]);
    expect(state.text).toBe("Hello world!");
    expect(state.sources).toEqual([{ index: 1 }]);
    expect(state.lastSeq).toBe(4);
    expect(state.status).toBe("streaming");
  });

  it("ignores duplicates replayed after a reconnect", () => {
    const before = run([token(1, "a"), token(2, "b"), token(3, "c")]);
    // Reconnected with afterSeq = 2 but the server replays from 2 anyway: overlap must not duplicate.
    const after = run([token(2, "b"), token(3, "c"), token(4, "d")], before);
    expect(after.text).toBe("abcd");
    expect(after.lastSeq).toBe(4);
  });

  it("takes coalesced tokens: one event for several, seq numbers skipping the merged ones", () => {
    const before = run([token(1, "Hel"), token(2, "lo")]);
    // Behind: tokens 3..6 were waiting and arrive merged as seq 6; then live again.
    const after = run([token(6, " big wide"), token(7, " world")], before);
    expect(after.text).toBe("Hello big wide world");
    expect(after.lastSeq).toBe(7);
    // A reconnect resumes after 7; the replay (merged again) continues the text.
    expect(run([token(9, "!!")], after).text).toBe("Hello big wide world!!");
  });

  it("lastSeq is the resume point", () => {
    const state = run([token(1, "x"), token(2, "y")]);
    expect(state.lastSeq).toBe(2);
  });

  it("DONE replaces the draft with the final text", () => {
    const state = run([token(1, "draft [9]"), { kind: "DONE", seq: 2, content: "final [1]", status: "COMPLETE" }]);
    expect(state.status).toBe("done");
    expect(state.text).toBe("final [1]");
    // Late replays after DONE change nothing.
    expect(applyStreamEvent(state, token(1, "zzz")).text).toBe("final [1]");
  });

  it("DONE says whether the model's token limit cut the answer off", () => {
    const cut = run([token(1, "The answer stops"), { kind: "DONE", seq: 2, content: "The answer stops", status: "COMPLETE", truncated: true }]);
    expect(cut.truncated).toBe(true);
    const whole = run([token(1, "Done."), { kind: "DONE", seq: 2, content: "Done.", status: "COMPLETE" }]);
    expect(whole.truncated).toBe(false);
  });

  it("ERROR keeps the partial text and the message", () => {
    const state = run([token(1, "partial"), { kind: "ERROR", seq: 2, message: "The provider timed out." }]);
    expect(state.status).toBe("error");
    expect(state.text).toBe("partial");
    expect(state.error).toBe("The provider timed out.");
  });
});
