import { useEffect, useState } from "react";
import { onConnectionState, type ConnectionState } from "../api/ws";
import { isAdmin, useAuth } from "../auth";
import { linkHandler, usePath } from "../router";
import { currentTheme, setTheme, type Theme } from "../theme";

export function Header() {
  const { user, signOut } = useAuth();
  const path = usePath();
  const [theme, setThemeState] = useState<Theme>(currentTheme);
  const [connection, setConnection] = useState<ConnectionState>("connecting");
  useEffect(() => onConnectionState(setConnection), []);

  const toggleTheme = () => {
    const next = theme === "dark" ? "light" : "dark";
    setTheme(next);
    setThemeState(next);
  };
  const nav = (href: string, label: string, active: boolean) => (
    <a href={href} onClick={linkHandler(href)} aria-current={active ? "page" : undefined}>
      {label}
    </a>
  );
  return (
    <header className="topbar">
      <a className="brand" href="/" onClick={linkHandler("/")}>
        ragql
      </a>
      <nav aria-label="Main">
        {nav("/", "Chat", !path.startsWith("/admin") && path !== "/tokens")}
        {nav("/tokens", "Access tokens", path === "/tokens")}
        {isAdmin(user) && nav("/admin/models", "Admin", path.startsWith("/admin"))}
      </nav>
      <div className="topbar-right">
        {connection === "reconnecting" && (
          <span className="badge warn" role="status">
            Reconnecting…
          </span>
        )}
        <button type="button" className="ghost" onClick={toggleTheme} aria-label={`Switch to ${theme === "dark" ? "light" : "dark"} theme`}>
          {theme === "dark" ? "☀" : "☾"}
        </button>
        <span className="user-name" title={user?.email}>
          {user?.displayName || user?.email}
        </span>
        <button type="button" className="ghost" onClick={() => void signOut()}>
          Log out
        </button>
      </div>
    </header>
  );
}
