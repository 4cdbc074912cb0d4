/* The sidebar's materials tab: approved materials, searched, sent in one tap as the pieces
   guidebot returns (text, pictures or a video, the guide's tracked card) through
   sendChatMessage; the guide still taps send in the chat for each. Uses sidebar.js's api and
   ww; every text a guide reads comes from the page's sb-material-text block (the template). */
(function () {
  "use strict";
  var text = JSON.parse(document.getElementById("sb-material-text").textContent);
  var status = document.getElementById("sb-status");
  var list = document.getElementById("sb-materials");
  var customerId = null;

  function call(path, body) {
    return window.guidebotSidebar.api("/materials" + path, body);
  }

  function sendAll(messages) {
    return messages.reduce(function (done, message) {
      return done.then(function () { return ww.sendChatMessage(message); });
    }, Promise.resolve());
  }

  /* a refusal of guidebot's in the page's Chinese words (sidebar.js's why), else `fallback` */
  function refused(err, prefix, fallback) {
    var worded = err && err.code ? window.guidebotSidebar.why(err) : "";
    status.textContent = worded ? prefix + worded : fallback;
  }

  function use(material) {
    call("/" + encodeURIComponent(material.id) + "/use",
         { external_userid: customerId, channel: "send" })
      .then(function (used) {
        return sendAll(used.messages).then(function () { status.textContent = text.sent; },
          function () { status.textContent = text.send_failed; });
      }, function (err) { refused(err, text.use_refused, text.send_failed); });
  }

  function render(data) {
    list.replaceChildren();
    data.materials.forEach(function (material) {
      var row = document.createElement("li");
      var label = document.createElement("span");
      label.className = "text";
      label.textContent = "【" + material.grade + "】" + (material.title || material.id);
      var send = document.createElement("button");
      send.type = "button";
      send.textContent = text.send;
      send.setAttribute("aria-label", text.send_label + " " + (material.title || material.id));
      send.addEventListener("click", function () { use(material); });
      row.appendChild(label);
      row.appendChild(send);
      list.appendChild(row);
    });
    if (!data.materials.length) {
      var none = document.createElement("li");
      none.textContent = text.none;
      list.appendChild(none);
    }
    document.getElementById("sb-materials-card").hidden = false;
  }

  function load(keyword) {
    return call(keyword ? "?keyword=" + encodeURIComponent(keyword) : "").then(render,
      function () { status.textContent = text.failed; });
  }

  document.getElementById("sb-contribute").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = new FormData(event.target);
    var csrf = document.getElementById("sidebar").dataset.csrf;
    fetch(location.pathname + "/materials", { method: "POST", credentials: "same-origin",
                                              headers: { "X-CSRF-Token": csrf }, body: form })
      .then(window.guidebotSidebar.answer)
      .then(function () {
        event.target.reset();
        status.textContent = text.contributed;
      }, function (err) { refused(err, text.contribute_refused, text.contribute_failed); });
  });
  document.getElementById("sb-material-search").addEventListener("submit", function (event) {
    event.preventDefault();
    load(document.getElementById("sb-material-keyword").value.trim());
  });
  Promise.resolve(ww.getCurExternalContact()).then(function (res) {
    customerId = res.userId;
    return load("");
  }, function () { /* sidebar.js says there is no customer */ });
})();
