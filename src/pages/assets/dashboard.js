// dashboard.js: see src/pages/dashboard/
