// Starts Swagger UI on /api/docs against this instance's OpenAPI document. "Try it out" sends
// requests to this same origin; "Authorize" takes an API key (X-Api-Key) or uses the session cookie.
/* global SwaggerUIBundle */
window.addEventListener('DOMContentLoaded', () => {
  SwaggerUIBundle({
    url: '/api/openapi.json',
    dom_id: '#swagger-ui',
    deepLinking: true,
    tryItOutEnabled: false,
    persistAuthorization: false,
    withCredentials: true,
    displayRequestDuration: true,
    defaultModelsExpandDepth: 0,
    presets: [SwaggerUIBundle.presets.apis],
    layout: 'BaseLayout',
  });
});
