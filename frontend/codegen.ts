import type { CodegenConfig } from "@graphql-codegen/cli";

// Types for every operation come from the server's schema: an API change that
// breaks an operation or its use fails `npm run check`.
const config: CodegenConfig = {
  // RAGQL_SCHEMA lets a developer try the app against a schema exported from work in progress.
  schema: process.env.RAGQL_SCHEMA ?? "../schema.graphql",
  documents: ["src/**/*.graphql"],
  ignoreNoDocuments: true,
  generates: {
    "src/gql/": {
      preset: "client",
      config: {
        documentMode: "string",
        enumsAsTypes: true,
        useTypeImports: true,
        scalars: { Date: "string", DateTime: "string", UUID: "string", Upload: "File" },
        strictScalars: false,
        skipTypename: false,
        nonOptionalTypename: true,
      },
      presetConfig: { fragmentMasking: false },
    },
  },
};
export default config;
