/* The chat sidebar: register with WeCom (agentConfig), read the open chat's customer, show
   their card and send suggested text and tracked product cards into the chat. Every text a
   guide reads comes from the page's sb-text block (the template), none from this file. */
(function () {
  "use strict";
  var root = document.getElementById("sidebar");
  var cfg = root.dataset;
  var text = JSON.parse(document.getElementById("sb-text").textContent);
  var refusals = JSON.parse(document.getElementById("sb-refusals").textContent);
  var base = "/sidebar/" + encodeURIComponent(cfg.tenant);
  var customerId = null;

  function byId(id) { return document.getElementById(id); }
  function say(key, extra) { byId("sb-status").textContent = (text[key] || "") + (extra || ""); }
  /* why a request was refused: the page's Chinese wording of a coded refusal, else the detail */
  function why(err) {
    var worded = err && err.code && refusals["refusal." + err.code];
    if (!worded) { return (err && err.detail) || ""; }
    return worded.replace(/\{(\w+)\}/g, function (all, name) {
      return err.params[name] !== undefined ? err.params[name] : all;
    });
  }
  function yuan(fen) { return text.yuan + (fen / 100).toFixed(2); }
  function day(iso) {  /* the guide's own calendar day (the phone's time zone) */
    var d = new Date(iso);
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    return d.getFullYear() + "-" + two(d.getMonth() + 1) + "-" + two(d.getDate());
  }
  function item(tag, content, cls) {
    var node = document.createElement(tag);
    if (content !== undefined) { node.textContent = content; }
    if (cls) { node.className = cls; }
    return node;
  }
  function button(label, onClick, aria) {
    var node = item("button", label);
    node.type = "button";
    if (aria) { node.setAttribute("aria-label", aria); }
    node.addEventListener("click", onClick);
    return node;
  }

  function api(path, body) {
    var init = { credentials: "same-origin", headers: {} };
    if (body !== undefined) {
      init.method = "POST";
      init.headers["Content-Type"] = "application/json";
      init.headers["X-CSRF-Token"] = cfg.csrf;
      init.body = JSON.stringify(body);
    }
    return fetch(base + path, init).then(answer);
  }
  /* a response's JSON, or its refusal thrown: {status, detail, code, params} */
  function answer(resp) {
    if (resp.ok) { return resp.json(); }
    return resp.json().catch(function () { return {}; }).then(function (body) {
      var err = new Error("http " + resp.status);
      err.status = resp.status;
      err.detail = body && body.error;
      err.code = body && body.code;
      err.params = (body && body.params) || {};
      throw err;
    });
  }

  window.guidebotSidebar = { api: api, answer: answer, why: why };  // for sidebar_materials.js

  /* the customer card did not load: a refusal of guidebot's in its Chinese words, as every
     other request's; a failure without a code (the network, a proxy's page) the plain text */
  function fail(err) {
    var worded = err && err.code ? why(err) : "";
    if (worded) { say("load_refused", worded); } else { say("failed"); }
  }

  function send(message) {
    return Promise.resolve(ww.sendChatMessage(message)).then(function () { say("sent"); },
      function (err) { say("send_failed", (err && err.errMsg) || ""); });
  }

  function renderProfile(data) {
    byId("sb-name").textContent = data.customer.name || data.customer.external_userid;
    var channel = data.customer.channel;
    var parts = [];
    if (channel && channel.store) { parts.push(text.channel_store + channel.store); }
    if (channel && channel.campaign) { parts.push(text.channel_campaign + channel.campaign); }
    byId("sb-channel").textContent = parts.join(" · ");
    byId("sb-binding").textContent = data.bound_to_me ? text.bound_to_me
      : data.exclusive_guide ? text.bound_to_other + data.exclusive_guide : text.unbound;
    var birthday = data.customer.birthday;
    var shown = byId("sb-birthday");
    shown.textContent = !birthday ? "" : text.birthday + birthday.date + (
      birthday.in_days === null ? "" : "（" + (birthday.in_days === 0 ? text.birthday_today
        : text.birthday_in.replace("{days}", String(birthday.in_days))) + "）");
    shown.hidden = !birthday;
    var optedOut = byId("sb-opted-out");
    optedOut.textContent = data.customer.opted_out_at ? text.opted_out : "";
    optedOut.hidden = !data.customer.opted_out_at;
    byId("sb-remark").value = data.remark || "";
    byId("sb-description").value = data.description || "";
  }

  function renderTags(data) {
    var list = byId("sb-tags");
    list.replaceChildren();
    data.tags.forEach(function (name) {
      var chip = item("li", undefined, "tag");
      chip.appendChild(item("span", name));
      chip.appendChild(button("\u00d7", function () { editTags([], [name]); },
        text.remove_label + " " + name));
      list.appendChild(chip);
    });
    if (!data.tags.length) { list.appendChild(item("li", text.no_tags, "hint")); }
    var select = byId("sb-tag-add");
    select.replaceChildren(item("option", text.choose_tag));
    select.firstChild.value = "";
    data.tag_library.forEach(function (group) {
      var optgroup = document.createElement("optgroup");
      optgroup.label = group.group;
      group.tags.filter(function (t) { return data.tags.indexOf(t) < 0; }).forEach(function (t) {
        var option = item("option", t);
        option.value = t;
        optgroup.appendChild(option);
      });
      if (optgroup.children.length) { select.appendChild(optgroup); }
    });
  }

  function renderOrders(data) {
    var list = byId("sb-orders");
    list.replaceChildren();
    data.orders.forEach(function (o) {
      var row = item("li");
      row.appendChild(item("span", day(o.paid_at) + " " + (text[o.purchase] || "")));
      row.appendChild(item("strong", yuan(o.amount_fen)));
      list.appendChild(row);
    });
    if (!data.orders.length) { list.appendChild(item("li", text.no_orders, "hint")); }
    var p = data.propensity;
    byId("sb-score").textContent = String(p.score);
    byId("sb-categories").textContent = p.top_categories.join(" / ");
    byId("sb-visits").textContent = String(p.visits_30d);
    byId("sb-dwell").textContent = String(p.dwell_s_30d);
  }

  function fill(template, values) {
    return (template || "").replace(/\{(\w+)\}/g, function (all, key) {
      return values[key] === undefined || values[key] === null ? "" : String(values[key]);
    });
  }

  function timelineText(e) {  /* one event in the guide's words (templates in sb-text) */
    var key = e.kind === "follow" ? "tl_follow_" + e.action
      : e.kind === "field" && e.set_by === "hq" ? "tl_field_hq" : "tl_" + e.kind;
    return fill(text[key], {
      product: e.product, guide: e.guide_name || "", amount: yuan(e.amount_fen || 0),
      title: e.sop_title, step: e.step, group: e.group_name || text.tl_unnamed_group,
      field: e.field_label
    });
  }

  function renderTimeline(data) {
    var list = byId("sb-timeline");
    list.replaceChildren();
    data.timeline.forEach(function (e) {
      var row = item("li");
      row.dataset.kind = e.kind;
      row.appendChild(item("small", e.when));
      row.appendChild(item("span", timelineText(e), "text"));
      list.appendChild(row);
    });
    if (!data.timeline.length) { list.appendChild(item("li", text.no_timeline, "hint")); }
  }

  function renderNotes(data) {
    var list = byId("sb-notes");
    list.replaceChildren();
    data.notes.forEach(function (n) {
      var row = item("li");
      row.dataset.note = String(n.id);
      row.appendChild(item("small", n.when + " " + n.guide_name));
      row.appendChild(item("span", n.text, "text"));
      if (n.follow_up_on) { row.appendChild(item("small", text.follow_up + n.follow_up_on)); }
      list.appendChild(row);
    });
    if (!data.notes.length) { list.appendChild(item("li", text.no_notes, "hint")); }
  }

  /* 客户资料: one input suited to each field's kind, labelled; HQ's fields read-only */
  var fieldInputs = [];
  function fieldInput(f, id) {
    var input;
    if (f.kind === "choice") {
      input = document.createElement("select");
      input.appendChild(item("option", text.field_unset));
      input.firstChild.value = "";
      f.stale.concat(f.options).forEach(function (o) {
        var option = item("option", o + (f.stale.indexOf(o) >= 0 ? text.field_stale : ""));
        option.value = o;
        option.selected = o === f.value;
        input.appendChild(option);
      });
    } else {
      input = document.createElement("input");
      input.type = f.kind === "date" ? "date" : f.kind === "number" ? "number" : "text";
      if (f.kind === "number") { input.step = "any"; }
      if (f.kind === "text") { input.maxLength = f.max_length; }
      input.value = f.value === null ? "" : String(f.value);
    }
    input.id = id;
    return input;
  }
  function fieldBox(f) {
    var id = "sb-field-" + f.id;
    var box = item("div", undefined, "field");
    box.dataset.field = f.id;
    var read;
    var unreadable = function () { return false; };
    if (f.kind === "multi") {
      box = document.createElement("fieldset");
      box.className = "field";
      box.dataset.field = f.id;
      box.appendChild(item("legend", f.label));
      var boxes = f.stale.concat(f.options).map(function (o) {
        var label = item("label");
        var check = document.createElement("input");
        check.type = "checkbox";
        check.value = o;
        check.checked = (f.value || []).indexOf(o) >= 0;
        check.disabled = !f.guides_edit;
        label.appendChild(check);
        label.appendChild(document.createTextNode(
          " " + o + (f.stale.indexOf(o) >= 0 ? text.field_stale : "")));
        box.appendChild(label);
        return check;
      });
      read = function () {
        return boxes.filter(function (c) { return c.checked; })
          .map(function (c) { return c.value; });
      };
    } else {
      var label = item("label", f.label);
      label.htmlFor = id;
      box.appendChild(label);
      var input = fieldInput(f, id);
      input.disabled = !f.guides_edit;
      box.appendChild(input);
      read = function () { return input.value; };
      /* a number or date the browser cannot read gives value "": refused here, so a typo
         never clears what is stored */
      unreadable = function () { return Boolean(input.validity && input.validity.badInput); };
    }
    var notes = [];
    if (!f.guides_edit) { notes.push(text.field_hq_only); }
    if (f.set_by) {
      notes.push(fill(text.field_set, { who: f.set_by === "hq" ? text.field_hq
        : f.set_by_name || f.set_by, when: f.when }));
    }
    if (notes.length) { box.appendChild(item("small", notes.join(" · "), "hint")); }
    if (f.guides_edit) {
      fieldInputs.push({ id: f.id, label: f.label, kind: f.kind, read: read,
                         unreadable: unreadable });
    }
    return box;
  }
  function renderFields(data) {
    var list = byId("sb-fields");
    list.replaceChildren();
    fieldInputs = [];
    data.fields.forEach(function (f) { list.appendChild(fieldBox(f)); });
    if (!data.fields.length) { list.appendChild(item("p", text.no_fields, "hint")); }
    byId("sb-fields-save").hidden = !fieldInputs.length;
  }

  function renderGroups(data) {
    var list = byId("sb-groups");
    list.replaceChildren();
    data.groups.forEach(function (g) {
      var row = item("li");
      row.appendChild(item("span", g.name, "text"));
      if (g.joined_at) { row.appendChild(item("small", day(g.joined_at))); }
      list.appendChild(row);
    });
    if (!data.groups.length) { list.appendChild(item("li", text.no_groups, "hint")); }
  }

  function renderSending(data) {
    var products = byId("sb-products");
    products.replaceChildren();
    data.products.forEach(function (product) {
      var row = item("li");
      row.appendChild(item("span", product.name + " " + yuan(product.price_fen), "text"));
      row.appendChild(button(text.send_card, function () {
        api("/customer/" + encodeURIComponent(customerId) + "/card", { sku: product.sku })
          .then(function (card) {
            return send({ msgtype: "miniprogram", enterChat: false,
                          miniprogram: card.miniprogram });
          }, function (err) { say("card_failed", why(err)); });
      }, text.send_card + " " + product.name));
      products.appendChild(row);
    });
    var suggestions = byId("sb-suggestions");
    suggestions.replaceChildren();
    data.suggestions.forEach(function (s) {
      var row = item("li");
      row.appendChild(item("span", s.text, "text"));
      row.appendChild(button(text.send, function () {
        send({ msgtype: "text", text: { content: s.text } });
      }));
      suggestions.appendChild(row);
    });
  }

  function render(data) {
    renderProfile(data);
    renderTags(data);
    renderOrders(data);
    renderTimeline(data);
    renderNotes(data);
    renderFields(data);
    renderGroups(data);
    renderSending(data);
    ["sb-profile", "sb-tags-card", "sb-fields-card", "sb-notes-card", "sb-propensity-card", "sb-orders-card", "sb-timeline-card",
     "sb-groups-card", "sb-products-card", "sb-suggestions-card"].forEach(function (id) {
      byId(id).hidden = false;
    });
    say("ready");
  }

  function editTags(add, remove) {
    return api("/customer/" + encodeURIComponent(customerId) + "/tags",
               { add: add, remove: remove })
      .then(function (data) { render(data); say("tags_saved"); },
            function (err) { say("tags_failed", why(err)); });
  }

  byId("sb-tag-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var name = byId("sb-tag-add").value;
    if (name) { editTags([name], []); }
  });

  byId("sb-remark-form").addEventListener("submit", function (event) {
    event.preventDefault();
    api("/customer/" + encodeURIComponent(customerId) + "/remark",
        { remark: byId("sb-remark").value, description: byId("sb-description").value })
      .then(function (data) { render(data); say("remark_saved"); },
            function (err) { say("remark_failed", why(err)); });
  });

  byId("sb-fields-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var values = {};
    var bad = fieldInputs.filter(function (f) { return f.unreadable(); })[0];
    if (bad) {
      say("fields_failed", why({ code: "profile." + bad.kind,
                                 params: { field: bad.id, label: bad.label } }));
      return;
    }
    fieldInputs.forEach(function (f) { values[f.id] = f.read(); });
    api("/customer/" + encodeURIComponent(customerId) + "/fields", { values: values })
      .then(function (data) { render(data); say("fields_saved"); },
            function (err) { say("fields_failed", why(err)); });
  });

  byId("sb-note-form").addEventListener("submit", function (event) {
    event.preventDefault();
    api("/customer/" + encodeURIComponent(customerId) + "/notes",
        { text: byId("sb-note-text").value, follow_up_on: byId("sb-note-date").value || null })
      .then(function (data) {
        render(data);
        byId("sb-note-text").value = "";
        byId("sb-note-date").value = "";
        say("note_saved");
      }, function (err) { say("note_failed", why(err)); });
  });

  ww.register({
    corpId: cfg.corpId,
    agentId: Number(cfg.agentId),
    jsApiList: ["getContext", "getCurExternalContact", "sendChatMessage"],
    getAgentConfigSignature: function (url) {
      return api("/signature?url=" + encodeURIComponent(url));
    }
  });
  Promise.resolve(ww.getCurExternalContact()).then(function (res) {
    customerId = res.userId;
    return api("/customer/" + encodeURIComponent(customerId)).then(render, fail);
  }, function () { say("no_customer"); });
})();
