import { useAuth } from "../auth";
import { linkHandler, matchPath } from "../router";
import { AuditLogPage } from "./AuditLogPage";
import { DocumentsPage } from "./DocumentsPage";
import { GroupsPage } from "./GroupsPage";
import { ModelEditPage, ModelsPage } from "./ModelsPage";
import { UsagePage } from "./UsagePage";
import { UsersPage } from "./UsersPage";

export default function AdminConsole({ path }: { path: string }) {
  const { user } = useAuth();
  const superadmin = user?.role === "SUPERADMIN";
  const tabs: [string, string][] = [
    ["/admin/models", "Models"],
    ["/admin/users", "Users"],
    ["/admin/groups", "Groups"],
    ["/admin/usage", "Usage"],
    ...(superadmin ? ([["/admin/audit", "Audit log"]] as [string, string][]) : []),
  ];
  let page: React.ReactNode;
  let params: Record<string, string> | null;
  if ((params = matchPath("/admin/models/:id/documents", path))) page = <DocumentsPage modelId={params.id} />;
  else if ((params = matchPath("/admin/models/:id", path))) page = <ModelEditPage modelId={params.id} />;
  else if (path.startsWith("/admin/users")) page = <UsersPage />;
  else if (path.startsWith("/admin/groups")) page = <GroupsPage />;
  else if (path.startsWith("/admin/usage")) page = <UsagePage />;
  else if (path.startsWith("/admin/audit") && superadmin) page = <AuditLogPage />;
  else page = <ModelsPage />;
  return (
    <main className="page" id="main">
      <nav className="tabs" aria-label="Admin sections">
        {tabs.map(([href, label]) => (
          <a key={href} href={href} onClick={linkHandler(href)} aria-current={path.startsWith(href) ? "page" : undefined}>
            {label}
          </a>
        ))}
      </nav>
      {page}
    </main>
  );
}
