// The learning map, enhanced: when JavaScript runs, draw the points of the page's JSON data (the same points as
// the server-rendered SVG picture and list) on a Leaflet map with the node's tile server. Record text is only
// ever set as textContent or attributes, never as HTML: mirrored records are input from strangers.
(function () {
  "use strict";

  function popup(point) {
    var box = document.createElement("div");
    var link = document.createElement("a");
    link.href = point.href;
    link.textContent = point.name;
    var meta = document.createElement("div");
    meta.textContent = point.type + " · " + point.distanceKm.toFixed(2) + " km";
    box.appendChild(link);
    box.appendChild(meta);
    return box;
  }

  function start() {
    var holder = document.getElementById("map");
    var source = document.getElementById("map-data");
    if (!holder || !source || typeof window.L === "undefined") {
      return;
    }
    var data = JSON.parse(source.textContent);
    var L = window.L;
    holder.classList.add("map-live");
    var map = L.map(holder, { scrollWheelZoom: false });
    L.tileLayer(data.tiles.url, { attribution: data.tiles.attribution, maxZoom: 19 }).addTo(map);
    var centre = L.latLng(data.centre[0], data.centre[1]);
    map.fitBounds(centre.toBounds(data.radiusKm * 2000));
    var area = L.circle(centre, { radius: data.radiusKm * 1000, className: "map-radius", interactive: false });
    area.addTo(map);
    L.circleMarker(centre, { radius: 5, className: "map-centre", interactive: false }).addTo(map);
    data.points.forEach(function (point, index) {
      var marker = L.marker([point.latitude, point.longitude], {
        title: (index + 1) + ". " + point.name,
        alt: point.name,
        keyboard: true
      });
      marker.bindPopup(popup(point));
      marker.addTo(map);
    });
    document.body.classList.add("map-enhanced");
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
