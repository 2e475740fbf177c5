// The synchronous flow without a redirect_uri ends by closing the window the service opened.
window.close();
