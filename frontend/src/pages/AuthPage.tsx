import { useEffect, useState, type FormEvent } from "react";
import { errorMessage, request } from "../api/client";
import { useAuth } from "../auth";
import { AuthOptionsDocument, LogInDocument, SignUpDocument, type AuthOptionsQuery } from "../gql/graphql";
import { linkHandler } from "../router";

type AuthOptions = AuthOptionsQuery["authOptions"];

/** What `/login#error=<reason>` (the end of a refused single sign-on) means, in words. */
const SSO_ERRORS: Record<string, string> = {
  state_mismatch: "The sign-in could not be verified (it may have been started in another tab). Please try again.",
  code_rejected: "The identity provider did not accept the sign-in. Please try again.",
  invalid_token: "The identity provider's answer could not be verified. Please try again.",
  idp_unavailable: "The identity provider cannot be reached right now. Try again later, or log in with your password.",
  idp_error: "The identity provider reported an error.",
  access_denied: "The sign-in was cancelled or denied at the identity provider.",
  account_deactivated: "This account is deactivated. Ask an administrator.",
  auto_create_disabled: "There is no account for you here yet. Ask an administrator to create one.",
  account_exists: "An account with your email already exists here. Ask an administrator to link it to single sign-on.",
  email_missing: "The identity provider did not send your email address.",
  groups_claim_invalid: "The identity provider sent your groups in a form this server does not understand. Ask an administrator.",
  oidc_disabled: "Single sign-on is not configured on this server.",
  try_again: "Signing in did not complete. Please try again.",
  server_error: "Signing in failed on the server. Please try again.",
};

/** The fragment the OIDC callback left (`#code=…` or `#error=…`), removed from the address bar at once. */
function takeSsoFragment(): { code?: string; error?: string } {
  const params = new URLSearchParams(window.location.hash.slice(1));
  const code = params.get("code") ?? undefined;
  const error = params.get("error") ?? undefined;
  if (code || error) window.history.replaceState(null, "", window.location.pathname + window.location.search);
  return { code, error };
}

export function AuthPage({ mode }: { mode: "login" | "signup" }) {
  const { signIn, signInWithCode } = useAuth();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [displayName, setDisplayName] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [fieldErrors, setFieldErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const [options, setOptions] = useState<AuthOptions | null>(null);
  const signup = mode === "signup";

  useEffect(() => {
    // Read once, before anything else: the one-time code works a single time.
    const { code, error: ssoError } = takeSsoFragment();
    if (ssoError) setError(SSO_ERRORS[ssoError] ?? "Single sign-on failed. Please try again.");
    if (code) {
      setBusy(true);
      void signInWithCode(code)
        .then((problem) => {
          if (problem) setError(problem);
        })
        .catch((caught) => setError(errorMessage(caught)))
        .finally(() => setBusy(false));
    }
    request(AuthOptionsDocument)
      .then((data) => setOptions(data.authOptions))
      .catch(() => setOptions(null));
  }, [signInWithCode]);

  const passwordLogin = options?.passwordLoginEnabled ?? true;
  const signUpOffered = options?.signUpEnabled ?? true;
  const showForm = signup ? signUpOffered : passwordLogin;
  const sso = options?.oidcEnabled ? (
    <button type="button" className={passwordLogin ? undefined : "primary"} disabled={busy} onClick={() => window.location.assign("/auth/oidc/login")}>
      Sign in with {options.oidcDisplayName ?? "single sign-on"}
    </button>
  ) : null;

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    setFieldErrors({});
    try {
      if (signup) {
        const { signUp: result } = await request(SignUpDocument, { email, password, displayName: displayName || null });
        switch (result.__typename) {
          case "AuthPayload":
            signIn(result);
            return;
          case "InvalidInput":
            setFieldErrors(Object.fromEntries(result.fieldErrors.map((item) => [item.field, item.message])));
            // Shown once: beside the field when the server names one, else at the top.
            if (!result.fieldErrors.some((item) => item.message === result.message)) setError(result.message);
            break;
          case "AlreadyExists":
            setError(result.message);
            setFieldErrors({ [result.field]: result.message });
            break;
          case "SignUpDisabled":
            setError(result.message);
            break;
        }
      } else {
        const { logIn: result } = await request(LogInDocument, { email, password });
        switch (result.__typename) {
          case "AuthPayload":
            signIn(result);
            return;
          case "InvalidCredentials":
            setError(result.message);
            break;
          case "RateLimited":
            setError(`${result.message} (try again in ${result.retryAfterSeconds} s)`);
            break;
          case "PasswordLoginDisabled":
            setError(result.message);
            break;
        }
      }
    } catch (caught) {
      setError(errorMessage(caught));
    } finally {
      setBusy(false);
    }
  };

  const fieldError = (field: string) =>
    fieldErrors[field] ? (
      <span className="field-error" id={`${field}-error`}>
        {fieldErrors[field]}
      </span>
    ) : null;

  return (
    <main className="auth-page" id="main">
      <form className="card auth-card" onSubmit={submit} aria-labelledby="auth-title" noValidate>
        <h1 id="auth-title">{signup ? "Create an account" : "Log in to ragql"}</h1>
        {error && (
          <p className="alert error" role="alert">
            {error}
          </p>
        )}
        {!signup && sso}
        {!signup && sso && passwordLogin && <p className="muted">or log in with your password</p>}
        {showForm && (
          <>
            <label>
              Email
              <input
                name="email"
                type="email"
                autoComplete="email"
                required
                value={email}
                onChange={(event) => setEmail(event.target.value)}
                aria-invalid={!!fieldErrors.email}
                aria-describedby={fieldErrors.email ? "email-error" : undefined}
              />
              {fieldError("email")}
            </label>
            {signup && (
              <label>
                Display name <span className="muted">(optional)</span>
                <input
                  name="displayName"
                  autoComplete="name"
                  value={displayName}
                  onChange={(event) => setDisplayName(event.target.value)}
                  aria-invalid={!!fieldErrors.displayName}
                />
                {fieldError("displayName")}
              </label>
            )}
            <label>
              Password
              <input
                name="password"
                type="password"
                autoComplete={signup ? "new-password" : "current-password"}
                required
                value={password}
                onChange={(event) => setPassword(event.target.value)}
                aria-invalid={!!fieldErrors.password}
                aria-describedby={fieldErrors.password ? "password-error" : undefined}
              />
              {fieldError("password")}
            </label>
            <button type="submit" className="primary" disabled={busy}>
              {busy ? "Please wait…" : signup ? "Sign up" : "Log in"}
            </button>
          </>
        )}
        {signup && !signUpOffered && <p>Sign-up is turned off on this server.</p>}
        <p className="muted">
          {signup ? (
            <>
              Have an account? <a href="/login" onClick={linkHandler("/login")}>Log in</a>
            </>
          ) : signUpOffered ? (
            <>
              New here? <a href="/signup" onClick={linkHandler("/signup")}>Create an account</a>
            </>
          ) : null}
        </p>
      </form>
    </main>
  );
}
