// Small form helpers for the project page: upload with progress, server-side import, members.
(function () {
  const csrf = () => (document.cookie.match(/(?:^|; )csrftoken=([^;]+)/) || [])[1] || "";
  // A form's data-url, read as an attribute: `form.dataset` is shadowed by an input named
  // "dataset" (the HDF5 dataset field), which sent the import to /projects/1/undefined.
  const urlOf = (form) => form.getAttribute("data-url");
  const message = (body) => (body && body.error ? body.error.message + (body.error.detail ? " " + JSON.stringify(body.error.detail) : "") : "");
  function jobLink(form, job) {
    const projectJobs = location.pathname.replace(/\/$/, "") + "/jobs/";
    form.querySelector(".status").innerHTML = `Import job #${job.id} queued. <a href="${projectJobs}">Follow it on the jobs page</a>.`;
  }
  const upload = document.getElementById("upload-form");
  if (upload) upload.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const data = new FormData(upload);
    if (!data.get("voxel_size_nm")) data.delete("voxel_size_nm");
    if (!data.get("name")) data.delete("name");
    const xhr = new XMLHttpRequest();
    const bar = upload.querySelector("progress");
    bar.hidden = false;
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = e.loaded / e.total; };
    xhr.onload = () => {
      const body = JSON.parse(xhr.responseText || "{}");
      if (xhr.status === 202) jobLink(upload, body); else upload.querySelector(".status").textContent = message(body) || xhr.statusText;
    };
    xhr.open("POST", urlOf(upload));
    xhr.setRequestHeader("X-CSRFToken", csrf());
    xhr.send(data);
  });
  async function postJson(form, body) {
    const response = await fetch(urlOf(form), { method: "POST", headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() }, body: JSON.stringify(body) });
    return [response, await response.json().catch(() => ({}))];
  }
  const path = document.getElementById("path-form");
  if (path) path.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = Object.fromEntries([...new FormData(path)].filter(([, v]) => v));
    if (body.voxel_size_nm) body.voxel_size_nm = body.voxel_size_nm.split(",").map(Number);
    const [response, json] = await postJson(path, body);
    if (response.status === 202) jobLink(path, json);
    else path.querySelector(".status").textContent = message(json) || `The import was refused (${response.status} ${response.statusText}).`;
  });
  // Delegated: the volume table is swapped in place when an import finishes.
  document.addEventListener("submit", async (ev) => {
    const form = ev.target.closest && ev.target.closest(".voxel-form");
    if (!form) return;
    ev.preventDefault();
    const value = new FormData(form).get("voxel_size_nm").split(",").map(Number);
    const response = await fetch(urlOf(form), { method: "PUT", headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() }, body: JSON.stringify({ voxel_size_nm: value }) });
    const json = await response.json().catch(() => ({}));
    form.querySelector(".status").textContent = response.ok ? "saved" : message(json) || `${response.status} ${response.statusText}`;
  });
  // Imports show their progress here and a finished one joins the table, without a reload:
  // the project's socket carries every job event; the table is re-read from this page.
  const live = document.getElementById("imports-live");
  async function refreshVolumes() {
    const html = await (await fetch(location.href, { credentials: "same-origin" })).text();
    const fresh = new DOMParser().parseFromString(html, "text/html").getElementById("volumes-section");
    if (fresh) document.getElementById("volumes-section").replaceWith(fresh);
  }
  function showImport(job) {
    const id = `import-${job.id}`;
    let item = document.getElementById(id);
    if (!item) {
      item = document.createElement("li");
      item.id = id;
      item.innerHTML = '<span class="what"></span> <progress max="1"></progress>';
      live.append(item);
    }
    item.querySelector(".what").textContent = `Import #${job.id}: ${job.message || job.state}`;
    item.querySelector("progress").value = job.progress;
    item.dataset.state = job.state;
    if (job.state === "succeeded") {
      refreshVolumes().then(() => setTimeout(() => item.remove(), 4000));
      item.querySelector("progress").remove();
    } else if (job.state === "failed" || job.state === "cancelled") {
      item.querySelector("progress").remove();
    }
  }
  function follow() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/ws/projects/${live.dataset.project}/`);
    socket.onmessage = (ev) => {
      const data = JSON.parse(ev.data);
      if (data.type === "job" && data.job.kind === "import") showImport(data.job);
    };
    socket.onclose = () => setTimeout(follow, 2000);
  }
  if (live) follow();
  // People and classes: a manager's edits go through the REST API; after an addition the
  // section is re-read from this page, so its markup lives in one template.
  async function refreshPeople() {
    const html = await (await fetch(location.href, { credentials: "same-origin" })).text();
    const fresh = new DOMParser().parseFromString(html, "text/html").getElementById("people-section");
    if (fresh) document.getElementById("people-section").replaceWith(fresh);
  }
  async function send(method, url, body) {
    const response = await fetch(url, { method, headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
                                         body: body === undefined ? undefined : JSON.stringify(body) });
    const json = response.status === 204 ? {} : await response.json().catch(() => ({}));
    return [response, json];
  }
  const refused = (response, json) => message(json) || `${response.status} ${response.statusText}`;
  document.addEventListener("submit", async (ev) => {
    const form = ev.target;
    if (form.id !== "member-form" && form.id !== "class-form") return;
    ev.preventDefault();
    const body = Object.fromEntries(new FormData(form));
    if (form.id === "class-form" && !body.parent) delete body.parent;
    const [response, json] = await send("POST", urlOf(form), body);
    if (response.ok) {
      await refreshPeople();
      const done = document.getElementById(form.id);
      if (done) done.querySelector(".status").textContent = form.id === "member-form" ? `added ${json.username} as ${json.role}` : `added ${json.name} (value ${json.value})`;
    } else {
      form.querySelector(".status").textContent = refused(response, json);
    }
  });
  document.addEventListener("change", async (ev) => {
    const select = ev.target.closest && ev.target.closest(".member-role");
    if (!select) return;
    const status = select.closest("tr").querySelector(".status");
    const [response, json] = await send("PUT", select.dataset.url, { role: select.value });
    if (response.ok) { select.dataset.was = json.role; status.textContent = "saved"; }
    else { select.value = select.dataset.was; status.textContent = refused(response, json); }
  });
  document.addEventListener("click", async (ev) => {
    const remove = ev.target.closest && ev.target.closest(".member-remove");
    const save = ev.target.closest && ev.target.closest(".class-save");
    if (remove) {
      const row = remove.closest("tr");
      if (!confirm(`Take ${row.dataset.username} out of this project?`)) return;
      const [response, json] = await send("DELETE", row.querySelector(".member-role").dataset.url);
      if (response.ok) row.remove(); else row.querySelector(".status").textContent = refused(response, json);
    } else if (save) {
      const row = save.closest("tr");
      const field = (name) => row.querySelector(`[name=${name}]`).value;
      const [response, json] = await send("PATCH", row.dataset.url, { name: field("name"), color: field("color"), parent: field("parent") || null });
      if (response.ok) { row.dataset.class = json.name; row.querySelector(".status").textContent = "saved"; }
      else row.querySelector(".status").textContent = refused(response, json);
    }
  });
})();
