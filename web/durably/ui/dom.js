// The only ways the runs UI puts content into the DOM: create an element, set a text,
// set an attribute. Invariant: text (job-supplied or not) becomes textContent or an
// attribute value, never markup, so "<img src=x onerror=…>" shows as those characters.
// The setters compare before writing, so re-rendering an unchanged node touches nothing.

/** Create an element; `text` becomes its textContent, `attrs` its attributes. */
export function el(tag, { className, part, text, attrs } = {}, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (part) node.setAttribute("part", part);
  if (text != null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value != null) node.setAttribute(name, String(value));
  }
  node.append(...children.filter((child) => child != null));
  return node;
}

/** Set a node's text (null or undefined: empty) if it differs. */
export function setText(node, text) {
  const value = text == null ? "" : String(text);
  if (node.textContent !== value) node.textContent = value;
}

/** Set an attribute (null or undefined: remove it) if it differs. */
export function setAttr(node, name, value) {
  if (value == null) {
    if (node.hasAttribute(name)) node.removeAttribute(name);
  } else if (node.getAttribute(name) !== String(value)) {
    node.setAttribute(name, String(value));
  }
}
