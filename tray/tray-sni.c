/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "tray-sni.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "i18n.h"
#include "tray-internal.h"

#define ITEM_PATH "/StatusNotifierItem"
#define MENU_PATH "/MenuBar"
#define WATCHER "org.kde.StatusNotifierWatcher"

static const char introspection[] =
        "<node>"
        " <interface name='org.kde.StatusNotifierItem'>"
        "  <property name='Category' type='s' access='read'/>"
        "  <property name='Id' type='s' access='read'/>"
        "  <property name='Title' type='s' access='read'/>"
        "  <property name='Status' type='s' access='read'/>"
        "  <property name='IconName' type='s' access='read'/>"
        "  <property name='ToolTip' type='(sa(iiay)ss)' access='read'/>"
        "  <property name='ItemIsMenu' type='b' access='read'/>"
        "  <property name='Menu' type='o' access='read'/>"
        "  <method name='ContextMenu'><arg type='i' direction='in'/><arg type='i' direction='in'/></method>"
        "  <method name='Activate'><arg type='i' direction='in'/><arg type='i' direction='in'/></method>"
        "  <method name='SecondaryActivate'><arg type='i' direction='in'/><arg type='i' "
        "direction='in'/></method>"
        "  <method name='Scroll'><arg type='i' direction='in'/><arg type='s' direction='in'/></method>"
        "  <signal name='NewStatus'><arg type='s'/></signal>"
        "  <signal name='NewToolTip'/>"
        " </interface>"
        " <interface name='com.canonical.dbusmenu'>"
        "  <property name='Version' type='u' access='read'/>"
        "  <property name='TextDirection' type='s' access='read'/>"
        "  <property name='Status' type='s' access='read'/>"
        "  <method name='GetLayout'><arg type='i' direction='in'/><arg type='i' direction='in'/>"
        "   <arg type='as' direction='in'/><arg type='u' direction='out'/>"
        "   <arg type='(ia{sv}av)' direction='out'/></method>"
        "  <method name='GetGroupProperties'><arg type='ai' direction='in'/><arg type='as' direction='in'/>"
        "   <arg type='a(ia{sv})' direction='out'/></method>"
        "  <method name='Event'><arg type='i' direction='in'/><arg type='s' direction='in'/>"
        "   <arg type='v' direction='in'/><arg type='u' direction='in'/></method>"
        "  <method name='AboutToShow'><arg type='i' direction='in'/><arg type='b' direction='out'/></method>"
        "  <signal name='LayoutUpdated'><arg type='u'/><arg type='i'/></signal>"
        " </interface>"
        "</node>";

struct TraySni {
        Tray *tray;
        GDBusConnection *session;
        GDBusNodeInfo *info;
        guint item_id, menu_id, name_id, watch_id;
        char *name;
        guint32 revision;
        GPtrArray *items; /* menu item id - 1 -> certificate path; the layout's */
        GPtrArray *labels;
        char *status;
};

static bool streq(const char *a, const char *b) {
        return a && b && strcmp(a, b) == 0;
}

/* What the certificate needs, in a few words; *actionable when a click
 * starts its renewal. */
static char *cert_line(Tray *t, const TrayCert *c, bool *actionable) {
        TrayToken *tok = c->token ? g_hash_table_lookup(t->tokens, c->token) : NULL;
        const char *state = c->renewal_state ? c->renewal_state : "";
        char name[256];
        g_autofree char *what = NULL;

        *actionable = false;
        if (tok && (streq(tok->state, "awaiting-pin") || streq(tok->state, "renewing")))
                what = g_strdup_printf(_("renewing (%u%%)"), MIN(tok->progress, 100u));
        else if (streq(state, "approved") || streq(state, "issued")) {
                *actionable = tok && tok->present;
                what = g_strdup(*actionable ? _("renewal approved: click to update now")
                                            : _("renewal approved: insert the key"));
        } else if (streq(state, "under-review"))
                what = g_strdup(_("renewal under review"));
        else if (streq(state, "rejected"))
                what = g_strdup(_("renewal rejected"));
        else if (streq(state, "awaiting-payment"))
                what = g_strdup(_("renewal awaiting payment"));
        else if (c->days_left < 0)
                what = g_strdup(_("expired"));
        else
                what = g_strdup_printf(ngettext("%d day left", "%d days left", (unsigned long) c->days_left),
                                       (int) c->days_left);
        return g_strdup_printf("%s %s/%s: %s — %s", tok && tok->present ? "●" : "○",
                               tok && tok->serial ? tok->serial : "?", c->slot ? c->slot : "?",
                               cert_name(c, name, sizeof(name)), what);
}

static int compare_paths(gconstpointer a, gconstpointer b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* Rebuilds the items; returns the status: NeedsAttention when a renewal
 * waits for the user, Active when something else needs them. */
static const char *rebuild(TraySni *s, GPtrArray *actionable) {
        g_autofree char **paths = (char **) g_hash_table_get_keys_as_array(s->tray->certs, NULL);
        const char *status = "Passive";
        size_t n = 0;

        while (paths[n])
                n++;
        qsort(paths, n, sizeof(*paths), compare_paths);
        g_ptr_array_set_size(s->items, 0);
        g_ptr_array_set_size(s->labels, 0);
        for (size_t i = 0; i < n; i++) {
                TrayCert *c = g_hash_table_lookup(s->tray->certs, paths[i]);
                bool act;

                g_ptr_array_add(s->labels, cert_line(s->tray, c, &act));
                g_ptr_array_add(s->items, g_strdup(paths[i]));
                g_ptr_array_add(actionable, GINT_TO_POINTER(act));
                if (act)
                        status = "NeedsAttention";
                else if (strcmp(status, "Passive") == 0 &&
                         (c->days_left < 30 || !streq(c->renewal_state, "none")))
                        status = "Active";
        }
        return status;
}

static GVariant *layout(TraySni *s) {
        g_autoptr(GPtrArray) actionable = g_ptr_array_new();
        GVariantBuilder children, props;

        rebuild(s, actionable);
        g_variant_builder_init(&children, G_VARIANT_TYPE("av"));
        for (guint i = 0; i < s->items->len; i++) {
                GVariantBuilder p;

                g_variant_builder_init(&p, G_VARIANT_TYPE("a{sv}"));
                g_variant_builder_add(&p, "{sv}", "label", g_variant_new_string(s->labels->pdata[i]));
                g_variant_builder_add(&p, "{sv}", "enabled",
                                      g_variant_new_boolean(GPOINTER_TO_INT(actionable->pdata[i])));
                g_variant_builder_add(&children, "v", g_variant_new("(ia{sv}av)", (gint32) i + 1, &p, NULL));
        }
        if (s->items->len == 0) {
                GVariantBuilder p;

                g_variant_builder_init(&p, G_VARIANT_TYPE("a{sv}"));
                g_variant_builder_add(&p, "{sv}", "label", g_variant_new_string(_("No keys known")));
                g_variant_builder_add(&p, "{sv}", "enabled", g_variant_new_boolean(FALSE));
                g_variant_builder_add(&children, "v", g_variant_new("(ia{sv}av)", 1000, &p, NULL));
        }
        g_variant_builder_init(&props, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&props, "{sv}", "children-display", g_variant_new_string("submenu"));
        return g_variant_new("(u(ia{sv}av))", s->revision, 0, &props, &children);
}

static void on_event(TraySni *s, gint32 id, const char *event) {
        TrayNote *note;

        if (strcmp(event, "clicked") != 0 || id < 1 || (guint) id > s->items->len)
                return;
        note = tray_note(s->tray, s->items->pdata[id - 1]);
        if (note && tray_renew(s->tray, note, false) < 0)
                g_warning("Cannot start the renewal from the menu");
}

static void method_call(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                        const char *method, GVariant *params, GDBusMethodInvocation *inv,
                        gpointer userdata) {
        TraySni *s = userdata;

        if (strcmp(method, "GetLayout") == 0)
                g_dbus_method_invocation_return_value(inv, layout(s));
        else if (strcmp(method, "Event") == 0) {
                gint32 id;
                const char *event;

                g_variant_get(params, "(i&svu)", &id, &event, NULL, NULL);
                on_event(s, id, event);
                g_dbus_method_invocation_return_value(inv, NULL);
        } else if (strcmp(method, "AboutToShow") == 0)
                g_dbus_method_invocation_return_value(inv, g_variant_new("(b)", FALSE));
        else if (strcmp(method, "GetGroupProperties") == 0)
                g_dbus_method_invocation_return_value(inv, g_variant_new_parsed("(@a(ia{sv}) [],)"));
        else
                /* Activate, ContextMenu...: the host shows the menu itself. */
                g_dbus_method_invocation_return_value(inv, NULL);
}

static GVariant *tool_tip(TraySni *s) {
        return g_variant_new(
                "(sa(iiay)ss)", "application-certificate", NULL, _("Key certificates"),
                strcmp(s->status, "NeedsAttention") == 0 ? _("A renewal is ready: open the menu.") : "");
}

static GVariant *get_property(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                              const char *name, GError **error, gpointer userdata) {
        TraySni *s = userdata;

        if (strcmp(iface, "com.canonical.dbusmenu") == 0) {
                if (strcmp(name, "Version") == 0)
                        return g_variant_new_uint32(3);
                return g_variant_new_string(strcmp(name, "Status") == 0 ? "normal" : "ltr");
        }
        if (strcmp(name, "Category") == 0)
                return g_variant_new_string("Hardware");
        if (strcmp(name, "Id") == 0)
                return g_variant_new_string("keyrenew-tray");
        if (strcmp(name, "Title") == 0)
                return g_variant_new_string(_("Key certificates"));
        if (strcmp(name, "Status") == 0)
                return g_variant_new_string(s->status);
        if (strcmp(name, "IconName") == 0)
                return g_variant_new_string("application-certificate");
        if (strcmp(name, "ToolTip") == 0)
                return tool_tip(s);
        if (strcmp(name, "ItemIsMenu") == 0)
                return g_variant_new_boolean(TRUE);
        return g_variant_new_object_path(MENU_PATH);
}

static const GDBusInterfaceVTable vtable = {
        .method_call = method_call,
        .get_property = get_property,
};

static void on_registered(GObject *source, GAsyncResult *res, gpointer userdata) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);

        if (!reply)
                g_message("No status icon: %s", error->message);
}

static void on_watcher(GDBusConnection *c, const char *name, const char *owner, gpointer userdata) {
        TraySni *s = userdata;

        g_dbus_connection_call(c, WATCHER, "/StatusNotifierWatcher", WATCHER, "RegisterStatusNotifierItem",
                               g_variant_new("(s)", s->name), NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                               on_registered, NULL);
}

void tray_sni_changed(TraySni *s) {
        g_autoptr(GPtrArray) actionable = g_ptr_array_new();
        const char *status;

        if (!s)
                return;
        status = rebuild(s, actionable);
        s->revision++;
        g_dbus_connection_emit_signal(s->session, NULL, MENU_PATH, "com.canonical.dbusmenu", "LayoutUpdated",
                                      g_variant_new("(ui)", s->revision, 0), NULL);
        if (strcmp(status, s->status) != 0) {
                g_free(s->status);
                s->status = g_strdup(status);
                g_dbus_connection_emit_signal(s->session, NULL, ITEM_PATH, "org.kde.StatusNotifierItem",
                                              "NewStatus", g_variant_new("(s)", status), NULL);
                g_dbus_connection_emit_signal(s->session, NULL, ITEM_PATH, "org.kde.StatusNotifierItem",
                                              "NewToolTip", NULL, NULL);
        }
}

int tray_sni_new(Tray *t, GDBusConnection *session, TraySni **ret) {
        _cleanup_(tray_sni_freep) TraySni *s = calloc(1, sizeof(*s));

        if (!s)
                return -ENOMEM;
        s->tray = t;
        s->session = g_object_ref(session);
        s->status = g_strdup("Passive");
        s->items = g_ptr_array_new_with_free_func(g_free);
        s->labels = g_ptr_array_new_with_free_func(g_free);
        s->info = g_dbus_node_info_new_for_xml(introspection, NULL);
        s->item_id = g_dbus_connection_register_object(session, ITEM_PATH, s->info->interfaces[0], &vtable,
                                                       s, NULL, NULL);
        s->menu_id = g_dbus_connection_register_object(session, MENU_PATH, s->info->interfaces[1], &vtable,
                                                       s, NULL, NULL);
        if (!s->item_id || !s->menu_id)
                return -EIO;
        s->name = g_strdup_printf("org.kde.StatusNotifierItem-%d-1", (int) getpid());
        s->name_id = g_bus_own_name_on_connection(session, s->name, G_BUS_NAME_OWNER_FLAGS_NONE, NULL, NULL,
                                                  NULL, NULL);
        s->watch_id = g_bus_watch_name_on_connection(session, WATCHER, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                                     on_watcher, NULL, s, NULL);
        *ret = TAKE_PTR(s);
        return 0;
}

TraySni *tray_sni_free(TraySni *s) {
        if (!s)
                return NULL;
        if (s->watch_id)
                g_bus_unwatch_name(s->watch_id);
        if (s->name_id)
                g_bus_unown_name(s->name_id);
        if (s->item_id)
                g_dbus_connection_unregister_object(s->session, s->item_id);
        if (s->menu_id)
                g_dbus_connection_unregister_object(s->session, s->menu_id);
        if (s->info)
                g_dbus_node_info_unref(s->info);
        g_ptr_array_unref(s->items);
        g_ptr_array_unref(s->labels);
        g_free(s->name);
        g_free(s->status);
        g_object_unref(s->session);
        free(s);
        return NULL;
}
