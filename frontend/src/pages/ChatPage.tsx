export function ChatPage({ path: _path }: { path: string }) {
  return (
    <main className="page" id="main">
      <h1>Chat</h1>
      <p className="empty">The chat API is not available on this server yet.</p>
    </main>
  );
}
