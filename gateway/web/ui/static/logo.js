// A service's logo that cannot be loaded gives way to the service's name, not a broken image.
for (const img of document.querySelectorAll("img[data-fallback]")) {
  const fallBack = () => {
    const name = document.createElement("span");
    name.className = "logo-fallback";
    name.textContent = img.dataset.fallback;
    img.replaceWith(name);
  };
  if (img.complete && img.naturalWidth === 0) {
    fallBack();
  } else {
    img.addEventListener("error", fallBack, { once: true });
  }
}
