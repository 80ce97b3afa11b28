import type { CodegenConfig } from "@graphql-codegen/cli";

// Types for every operation come from the server's schema: an API change that
// breaks an operation or its use fails `npm run check`.
const config: CodegenConfig = {
  schema: "../schema.graphql",
  documents: ["src/**/*.graphql"],
  ignoreNoDocuments: true,
  generates: {
    "src/gql/": {
      preset: "client",
      config: {
        documentMode: "string",
        enumsAsTypes: true,
        useTypeImports: true,
        scalars: { DateTime: "string", UUID: "string", Upload: "File" },
        strictScalars: false,
        skipTypename: false,
        nonOptionalTypename: true,
      },
      presetConfig: { fragmentMasking: false },
    },
  },
};
export default config;
