/** The signed-in user, shared by the whole app. */
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { request, tokens } from "./api/client";
import { resetSubscriptions } from "./api/ws";
import { LogOutDocument, MeDocument, type AuthFieldsFragment, type UserFieldsFragment } from "./gql/graphql";

interface AuthContextValue {
  user: UserFieldsFragment | null;
  loading: boolean;
  signIn: (payload: AuthFieldsFragment) => void;
  signOut: () => Promise<void>;
  reload: () => Promise<void>;
}

const AuthContext = createContext<AuthContextValue | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const [user, setUser] = useState<UserFieldsFragment | null>(null);
  const [loading, setLoading] = useState(true);

  const reload = useCallback(async () => {
    if (!tokens.session) {
      setUser(null);
      setLoading(false);
      return;
    }
    try {
      const data = await request(MeDocument);
      setUser(data.me ?? null);
      if (!data.me) tokens.set(null);
    } catch {
      setUser(null);
    } finally {
      setLoading(false);
    }
  }, []);

  useEffect(() => {
    void reload();
    // Another tab signed in or out, or a refresh failed: follow it.
    const onStorage = (event: StorageEvent) => {
      if (event.key === "ragql.session" && (event.newValue === null) !== (event.oldValue === null)) {
        resetSubscriptions();
        void reload();
      }
    };
    window.addEventListener("storage", onStorage);
    const unsubscribe = tokens.subscribe((session) => {
      if (!session) setUser(null);
    });
    return () => {
      window.removeEventListener("storage", onStorage);
      unsubscribe();
    };
  }, [reload]);

  const signIn = useCallback((payload: AuthFieldsFragment) => {
    const { accessToken, accessTokenExpiresAt, refreshToken, refreshTokenExpiresAt } = payload;
    tokens.set({ accessToken, accessTokenExpiresAt, refreshToken, refreshTokenExpiresAt });
    resetSubscriptions();
    setUser(payload.user);
  }, []);

  const signOut = useCallback(async () => {
    const refreshToken = tokens.session?.refreshToken ?? null;
    try {
      await request(LogOutDocument, { refreshToken });
    } catch {
      // Signing out locally still works when the server is unreachable.
    }
    tokens.set(null);
    resetSubscriptions();
    setUser(null);
  }, []);

  const value = useMemo(() => ({ user, loading, signIn, signOut, reload }), [user, loading, signIn, signOut, reload]);
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthContextValue {
  const value = useContext(AuthContext);
  if (!value) throw new Error("useAuth outside AuthProvider");
  return value;
}

export const isAdmin = (user: UserFieldsFragment | null) => user?.role === "ADMIN" || user?.role === "SUPERADMIN";
