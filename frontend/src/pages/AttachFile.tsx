export function AttachFile({ sessionId: _sessionId }: { sessionId: string }) {
  return null;
}
