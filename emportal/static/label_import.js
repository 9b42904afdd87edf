// The project page's label import: a value -> class mapping, upload or data-folder path, then the job's
// progress (project socket, with a slow poll in case the socket is down) and an Undo of the imported stroke.
(function () {
  const form = document.getElementById("labels-form");
  if (!form) return;
  const csrf = () => (document.cookie.match(/(?:^|; )csrftoken=([^;]+)/) || [])[1] || "";
  const status = form.querySelector(".status");
  const bar = form.querySelector("progress");
  const rows = form.querySelector(".mapping-rows tbody");
  const rowTemplate = form.querySelector("template.mapping-row");
  const field = (name) => form.elements.namedItem(name);
  const say = (text, isError) => { status.textContent = text; status.classList.toggle("error", !!isError); };
  const messageOf = (body, response) => (body && body.error
    ? body.error.message + (body.error.detail ? " " + JSON.stringify(body.error.detail) : "")
    : `The import was refused (${response.status} ${response.statusText}).`);

  function addRow(value, cls) {
    const row = rowTemplate.content.firstElementChild.cloneNode(true);
    if (value !== undefined) row.querySelector("input").value = value;
    if (cls) row.querySelector("select").value = cls;
    row.querySelector(".remove").addEventListener("click", () => row.remove());
    rows.append(row);
  }
  addRow(1);
  addRow(2);
  form.querySelector(".mapping-add").addEventListener("click", () => addRow(rows.children.length + 1));
  const showMapping = () => { form.querySelector(".mapping").hidden = field("kind").value === "instances"; };
  field("kind").addEventListener("change", showMapping);
  showMapping();

  function mapping() {
    const out = {};
    for (const row of rows.children) {
      const value = row.querySelector("input").value.trim();
      if (value !== "") out[value] = row.querySelector("select").value;
    }
    return out;
  }

  let socket = null;
  let poll = null;
  function follow(job, volumeId) {
    bar.hidden = false;
    bar.value = job.progress || 0;
    say(`Label import job #${job.id} ${job.state}…`);
    const done = (j) => {
      if (j.id !== job.id) return;
      bar.value = j.progress;
      if (j.state === "queued" || j.state === "running") { say(j.message || `Label import job #${j.id} ${j.state}…`); return; }
      clearInterval(poll);
      if (socket) socket.close();
      bar.hidden = j.state !== "succeeded";
      if (j.state !== "succeeded") { say(j.message || `The label import ${j.state}.`, true); return; }
      say(j.message + ". ");
      const open = document.createElement("a");
      open.href = `/volumes/${volumeId}/`;
      open.textContent = "Open the volume";
      const undo = document.createElement("button");
      undo.type = "button";
      undo.className = "undo-import";
      undo.textContent = "Undo this import";
      undo.addEventListener("click", async () => {
        undo.disabled = true;
        const r = await fetch(`/api/volumes/${volumeId}/strokes/${j.result.stroke}/undo/`,
          { method: "POST", headers: { "X-CSRFToken": csrf() } });
        const body = await r.json().catch(() => ({}));
        if (r.ok) say("The import was undone: the layer holds what it held before."); else { undo.disabled = false; say(messageOf(body, r), true); }
      });
      status.append(open, " ", undo);
    };
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/ws/projects/${form.getAttribute("data-project")}/`);
    socket.addEventListener("message", (ev) => {
      const msg = JSON.parse(ev.data);
      for (const e of msg.type === "batch" ? msg.events : [msg]) if (e.type === "job") done(e.job);
    });
    const check = async () => {
      const r = await fetch(`/api/jobs/${job.id}/`);
      if (r.ok) done(await r.json());
    };
    poll = setInterval(check, 1500);
    check();
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const volumeId = field("volume").value;
    const file = field("file").files[0];
    const path = field("path").value.trim();
    if (!file === !path) { say("Choose a file to upload, or give a path in the data folder (not both).", true); return; }
    const options = { layer: field("layer").value.trim(), kind: field("kind").value, mode: field("mode").value };
    const dataset = field("dataset").value.trim();
    if (dataset) options.dataset = dataset;
    if (options.kind === "labels") options.mapping = mapping();
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    say(file ? `Uploading ${file.name}…` : "Checking the file…");
    let response;
    try {
      if (file) {
        const data = new FormData();
        data.append("file", file);
        for (const [k, v] of Object.entries(options)) data.append(k, typeof v === "string" ? v : JSON.stringify(v));
        response = await fetch(`/api/volumes/${volumeId}/labels/import/`, { method: "POST", headers: { "X-CSRFToken": csrf() }, body: data });
      } else {
        response = await fetch(`/api/volumes/${volumeId}/labels/import/`, {
          method: "POST", headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
          body: JSON.stringify({ ...options, path }),
        });
      }
    } finally {
      submit.disabled = false;
    }
    const body = await response.json().catch(() => ({}));
    if (response.status === 202) follow(body, volumeId); else say(messageOf(body, response), true);
  });
})();
