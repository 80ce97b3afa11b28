export default function AdminConsole({ path: _path }: { path: string }) {
  return (
    <main className="page" id="main">
      <h1>Admin</h1>
      <p className="empty">The admin API is not available on this server yet.</p>
    </main>
  );
}
