import { defineConfig } from "vite";
import durably from "durably-pyodide/vite";

export default defineConfig({ plugins: [durably()] });
