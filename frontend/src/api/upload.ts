/**
 * File uploads with the GraphQL multipart request spec, over XMLHttpRequest so the
 * browser reports upload progress (fetch cannot).
 */
import type { TypedDocumentString } from "../gql/graphql";
import { ApiError, GRAPHQL_PATH, SESSION_HEADERS, tokens, type GraphQLErrorShape } from "./client";

export interface UploadHandle<TResult> {
  promise: Promise<TResult>;
  abort: () => void;
}

export function uploadFile<TResult, TVariables extends Record<string, unknown>>(
  document: TypedDocumentString<TResult, TVariables>,
  variables: TVariables,
  fileVariable: keyof TVariables & string,
  file: File,
  onProgress: (loaded: number, total: number) => void,
): UploadHandle<TResult> {
  const xhr = new XMLHttpRequest();
  const promise = (async () => {
    const token = await tokens.accessToken();
    const form = new FormData();
    form.append(
      "operations",
      JSON.stringify({ query: document.toString(), variables: { ...variables, [fileVariable]: null } }),
    );
    form.append("map", JSON.stringify({ "0": [`variables.${fileVariable}`] }));
    form.append("0", file, file.name);
    return new Promise<TResult>((resolve, reject) => {
      xhr.open("POST", GRAPHQL_PATH);
      if (token) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
      for (const [name, value] of Object.entries(SESSION_HEADERS)) xhr.setRequestHeader(name, value);
      xhr.upload.onprogress = (event) => onProgress(event.loaded, event.lengthComputable ? event.total : file.size);
      xhr.onerror = () => reject(new ApiError("The upload failed: the connection was lost."));
      xhr.onabort = () => reject(new ApiError("The upload was cancelled."));
      xhr.onload = () => {
        let body: { data?: TResult; errors?: GraphQLErrorShape[] } = {};
        try {
          body = JSON.parse(xhr.responseText);
        } catch {
          reject(new ApiError(`The server answered with HTTP ${xhr.status}.`, [], xhr.status));
          return;
        }
        if (body.errors?.length) {
          reject(new ApiError(body.errors.map((error) => error.message).join("; "), body.errors, xhr.status));
        } else if (body.data) {
          onProgress(file.size, file.size);
          resolve(body.data);
        } else reject(new ApiError(`The server answered with HTTP ${xhr.status}.`, [], xhr.status));
      };
      xhr.send(form);
    });
  })();
  return { promise, abort: () => xhr.abort() };
}
