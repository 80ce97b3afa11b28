import { useState, type FormEvent } from "react";
import { errorMessage, request } from "../api/client";
import { useAuth } from "../auth";
import { LogInDocument, SignUpDocument } from "../gql/graphql";
import { linkHandler } from "../router";

export function AuthPage({ mode }: { mode: "login" | "signup" }) {
  const { signIn } = useAuth();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [displayName, setDisplayName] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [fieldErrors, setFieldErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const signup = mode === "signup";

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
        <p className="muted">
          {signup ? (
            <>
              Have an account? <a href="/login" onClick={linkHandler("/login")}>Log in</a>
            </>
          ) : (
            <>
              New here? <a href="/signup" onClick={linkHandler("/signup")}>Create an account</a>
            </>
          )}
        </p>
      </form>
    </main>
  );
}
