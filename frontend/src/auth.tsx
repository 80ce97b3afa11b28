/** The signed-in user, shared by the whole app. */
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { request, tokens } from "./api/client";
import { resetSubscriptions } from "./api/ws";
import {
  ExchangeLoginCodeDocument,
  LogOutDocument,
  MeDocument,
  type AuthFieldsFragment,
  type UserFieldsFragment,
} from "./gql/graphql";

interface AuthContextValue {
  user: UserFieldsFragment | null;
  loading: boolean;
  signIn: (payload: AuthFieldsFragment) => void;
  /** Finish a single sign-on: exchange the one-time code for a session; the problem in words, or null. */
  signInWithCode: (code: string) => Promise<string | null>;
  signOut: () => Promise<void>;
  reload: () => Promise<void>;
}

const AuthContext = createContext<AuthContextValue | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const [user, setUser] = useState<UserFieldsFragment | null>(null);
  const [loading, setLoading] = useState(true);

  /** Who is signed in: the access token in memory, or else a session restored from the cookie. */
  const reload = useCallback(async () => {
    try {
      if (!tokens.session) await tokens.restore();
      if (!tokens.session) {
        setUser(null);
        return;
      }
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
    // Another tab signed in (the cookie is now that session's) or out: follow it.
    const unannounce = tokens.onAnnouncement((message) => {
      // Loading, not signed out, while the new session is fetched: the page stays where it is.
      if (message === "signed-in") setLoading(true);
      tokens.set(null);
      resetSubscriptions();
      if (message === "signed-in") void reload();
      else setUser(null);
    });
    const unsubscribe = tokens.subscribe((session) => {
      if (!session) setUser(null);
    });
    return () => {
      unannounce();
      unsubscribe();
    };
  }, [reload]);

  const signIn = useCallback((payload: AuthFieldsFragment) => {
    const { accessToken, accessTokenExpiresAt } = payload;
    tokens.set({ accessToken, accessTokenExpiresAt });
    tokens.announce("signed-in");
    resetSubscriptions();
    setUser(payload.user);
  }, []);

  const signInWithCode = useCallback(
    async (code: string) => {
      const { exchangeLoginCode: result } = await request(ExchangeLoginCodeDocument, { code });
      if (result.__typename === "AuthPayload") {
        signIn(result);
        return null;
      }
      return result.message;
    },
    [signIn],
  );

  const signOut = useCallback(async () => {
    try {
      // Revokes the cookie's token family and clears the cookie.
      await request(LogOutDocument);
    } catch {
      // Signing out locally still works when the server is unreachable.
    }
    tokens.set(null);
    tokens.announce("signed-out");
    resetSubscriptions();
    setUser(null);
  }, []);

  const value = useMemo(
    () => ({ user, loading, signIn, signInWithCode, signOut, reload }),
    [user, loading, signIn, signInWithCode, signOut, reload],
  );
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthContextValue {
  const value = useContext(AuthContext);
  if (!value) throw new Error("useAuth outside AuthProvider");
  return value;
}

export const isAdmin = (user: UserFieldsFragment | null) => user?.role === "ADMIN" || user?.role === "SUPERADMIN";
