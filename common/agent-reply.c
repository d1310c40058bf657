/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "agent-reply.h"

#include <string.h>

#include "config.h"
#include "macro.h"

int agent_check_caller(sd_bus_message *m, sd_bus_error *error) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        const char *sender = sd_bus_message_get_sender(m), *owner = NULL;
        int r;

        r = sd_bus_get_name_creds(sd_bus_message_get_bus(m), KEYRENEW_BUS_NAME, SD_BUS_CREDS_UNIQUE_NAME,
                                  &creds);
        if (r >= 0)
                r = sd_bus_creds_get_unique_name(creds, &owner);
        if (r >= 0 && sender && owner && strcmp(sender, owner) == 0)
                return 0;
        return sd_bus_error_set(error, SD_BUS_ERROR_ACCESS_DENIED,
                                "Only keyrenewd, the owner of " KEYRENEW_BUS_NAME ", may call this agent.");
}

int agent_reply_pin(sd_bus_message *request, const char *pin) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus *bus = sd_bus_message_get_bus(request);
        int r;

        r = sd_bus_message_new_method_return(request, &reply);
        if (r >= 0)
                r = sd_bus_message_sensitive(reply);
        if (r >= 0)
                r = sd_bus_message_append(reply, "s", pin);
        if (r >= 0)
                r = sd_bus_send(bus, reply, NULL);
        if (r >= 0)
                r = sd_bus_flush(bus);
        return r;
}
