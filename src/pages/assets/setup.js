// setup.js: see src/pages/setup/
