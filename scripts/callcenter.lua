fs_api = freeswitch.API();
g_log_ani = session:getVariable("caller_id_number")
g_log_dnis = session:getVariable("destination_number")

function ScenarioLog(strLevel, strLog)
        local sLine = "[" .. g_log_ani .. "][" .. g_log_dnis .. "]" .. strLog
        freeswitch.consoleLog(strLevel, sLine)
end

local queue = g_log_dnis
ScenarioLog("INFO", "Test Call center Scenario Start Queue:" ..queue .."\n")
session:execute("set", "caller_id_name=" ..queue)
session:execute("callcenter", queue .."@default")
ScenarioLog("INFO", "Test Call center Scenario End \n")
