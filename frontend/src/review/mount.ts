/**
 * The review features of the volume page: comment markers (a "Review markers" row in the
 * layer list) and the comments panel always; the diff chooser in the layer panel; and the
 * reviewer-mode panel when the page was opened with ?review=<id>. Returns one disposer.
 */
import { type Disposable, DisposableSet } from "../core/disposable";
import { h } from "../core/dom";
import { CommentMarkers, CommentsPanel, CommentStore } from "./comments";
import { DiffPanel } from "./diff_panel";
import type { ReviewHost } from "./host";
import { reviewIdFrom } from "./markers";
import { ReviewPanel } from "./review_panel";
import "./review.css";

export function mountReview(sidebar: HTMLElement, host: ReviewHost, { auditUrl }: { auditUrl?: string } = {}): Disposable {
  const d = new DisposableSet();
  const reviewId = reviewIdFrom(window.location.search);
  const store = d.add(new CommentStore(host.ctx.info.id));
  const markers = d.add(new CommentMarkers(host, store));
  d.add(host.layers.addLayer(markers.display));
  const diff = d.add(new DiffPanel(host));
  d.add(host.layers.addSection(diff.element));
  const comments = d.add(new CommentsPanel(host, store, reviewId));
  if (auditUrl !== undefined) comments.element.append(h("a", { class: "audit-link", id: "audit-link", href: auditUrl }, "Audit trail of this volume →"));

  const placed: HTMLElement[] = [];
  if (reviewId !== null) {
    const panel = d.add(new ReviewPanel(host, reviewId));
    d.add(panel.changed.add(() => void store.reload()));
    d.add(comments.changed.add(() => void panel.reload()));
    placed.push(panel.element);
    sidebar.prepend(panel.element);
    document.body.classList.add("review-mode");
    d.add(() => document.body.classList.remove("review-mode"));
  }
  // Comments go right below the review panel in reviewer mode, else below the layer list.
  const layers = host.layers.element;
  if (reviewId !== null) placed[0]!.after(comments.element);
  else if (layers.parentElement === sidebar) layers.after(comments.element);
  else sidebar.append(comments.element);
  placed.push(comments.element);
  d.add(() => {
    for (const el of placed) el.remove();
  });
  void store.reload();
  return d;
}
