import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

export default defineConfig({
  plugins: [react()],
  server: {
    proxy: { "/graphql": { target: "http://127.0.0.1:8000", ws: true }, "/files": "http://127.0.0.1:8000" },
  },
  build: { outDir: "dist", sourcemap: false, target: "es2020" },
});
