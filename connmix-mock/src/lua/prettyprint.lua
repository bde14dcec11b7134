-- prettyprint for connmix-mock's Lua host (our own, not the engine's file).
-- require("prettyprint") makes print() show tables with their contents, and returns a table
-- whose format(value) gives that text and which can be called like print.

local M = {}

local function key_text(k)
    if type(k) == "string" and k:match("^[%a_][%w_]*$") then
        return k
    end
    return "[" .. (type(k) == "string" and string.format("%q", k) or tostring(k)) .. "]"
end

local function format(value, indent, seen)
    if type(value) == "string" then
        return string.format("%q", value)
    end
    if type(value) ~= "table" then
        return tostring(value)
    end
    if seen[value] then
        return "<cycle>"
    end
    seen[value] = true
    local keys = {}
    for k in pairs(value) do
        keys[#keys + 1] = k
    end
    table.sort(keys, function(a, b)
        if type(a) == type(b) and (type(a) == "number" or type(a) == "string") then
            return a < b
        end
        return type(a) < type(b)
    end)
    if #keys == 0 then
        seen[value] = nil
        return "{}"
    end
    local pad = string.rep("  ", indent + 1)
    local lines = {}
    for _, k in ipairs(keys) do
        lines[#lines + 1] = pad .. key_text(k) .. " = " .. format(value[k], indent + 1, seen)
    end
    seen[value] = nil
    return "{\n" .. table.concat(lines, ",\n") .. "\n" .. string.rep("  ", indent) .. "}"
end

function M.format(value)
    return format(value, 0, {})
end

local plain_print = print

local function pretty_print(...)
    local parts = {}
    for i = 1, select("#", ...) do
        parts[i] = M.format((select(i, ...)))
    end
    plain_print(table.concat(parts, "\t"))
end

print = pretty_print
setmetatable(M, { __call = function(_, ...) pretty_print(...) end })

return M
