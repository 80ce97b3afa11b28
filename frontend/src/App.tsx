import { lazy, Suspense, useEffect } from "react";
import { isAdmin, useAuth } from "./auth";
import { AuthPage } from "./pages/AuthPage";
import { ChatPage } from "./pages/ChatPage";
import { AccessTokensPage } from "./pages/AccessTokensPage";
import { Header } from "./components/Header";
import { navigate, usePath } from "./router";

// The admin console is a separate chunk: most users never load it.
const AdminConsole = lazy(() => import("./admin/AdminConsole"));

export function App() {
  const { user, loading } = useAuth();
  const path = usePath();

  useEffect(() => {
    if (loading) return;
    const onAuthPage = path === "/login" || path === "/signup";
    if (!user && !onAuthPage) navigate("/login", { replace: true });
    if (user && onAuthPage) navigate("/", { replace: true });
  }, [user, loading, path]);

  if (loading) {
    return (
      <div className="center-screen" role="status">
        Loading…
      </div>
    );
  }
  if (!user) return <AuthPage mode={path === "/signup" ? "signup" : "login"} />;

  let page: React.ReactNode;
  if (path.startsWith("/admin")) {
    page = isAdmin(user) ? (
      <Suspense fallback={<div className="center-screen" role="status">Loading the admin console…</div>}>
        <AdminConsole path={path} />
      </Suspense>
    ) : (
      <main className="page" id="main">
        <h1>Not allowed</h1>
        <p>The admin console is for administrators.</p>
      </main>
    );
  } else if (path === "/tokens") {
    page = <AccessTokensPage />;
  } else {
    page = <ChatPage path={path} />;
  }
  return (
    <div className="app">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <Header />
      {page}
    </div>
  );
}
