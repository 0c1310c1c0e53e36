// SAML HTTP-POST binding: submit the AuthnRequest form to the IdP as soon as the page loads.
// (A separate file, so the page needs no inline script under its Content-Security-Policy.)
document.forms[0]?.submit();
