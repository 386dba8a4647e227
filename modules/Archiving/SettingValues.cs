using System.Globalization;

namespace PgState.Modules.Archiving;

/// <summary>What pg_settings says about a parameter: its type, unit, bounds and context.</summary>
public sealed record ParameterInfo(
    string Name,
    string VarType,
    string? Unit,
    string Context,
    string? MinVal,
    string? MaxVal,
    IReadOnlyList<string> EnumVals);

/// <summary>
/// Compares parameter values the way PostgreSQL does: in the parameter's own unit
/// (1GB = 1024MB, 5min = 300 for a seconds parameter), booleans by meaning (on = true = yes = 1),
/// enums case-insensitively. Pure functions, unit-tested without a server.
/// </summary>
public static class SettingValues
{
    private static readonly (string Unit, double Factor)[] MemoryUnits =
        [("TB", 1024d * 1024 * 1024 * 1024), ("GB", 1024d * 1024 * 1024), ("MB", 1024d * 1024), ("kB", 1024), ("B", 1)];

    private static readonly (string Unit, double Factor)[] TimeUnits =
        [("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1000), ("ms", 1), ("us", 0.001)];

    /// <summary>Enum values PostgreSQL accepts and then reports under another name in pg_settings.</summary>
    private static readonly (string Name, string Alias, string Value)[] EnumAliases = [("wal_compression", "on", "pglz")];

    /// <summary>Normalises a value for comparison; false with a reason when PostgreSQL would reject it.</summary>
    public static bool TryNormalize(ParameterInfo info, string raw, out string normalized, out string? error)
    {
        normalized = raw;
        error = null;
        var text = raw.Trim();
        switch (info.VarType)
        {
            case "bool":
                var b = ParseBool(text);
                if (b is null)
                {
                    error = $"'{raw}' is not a boolean (on, off, true, false, yes, no, 1, 0)";
                    return false;
                }
                normalized = b.Value ? "on" : "off";
                return true;
            case "enum":
                var match = info.EnumVals.FirstOrDefault(v => string.Equals(v, text, StringComparison.OrdinalIgnoreCase));
                if (match is null && ParseBool(text) is { } hidden && info.EnumVals.Contains(hidden ? "on" : "off"))
                {
                    // PostgreSQL's enums that take on/off also take true, yes, 1 … (hidden from enumvals).
                    match = hidden ? "on" : "off";
                }
                if (match is null)
                {
                    error = $"'{raw}' is not one of: {string.Join(", ", info.EnumVals)}";
                    return false;
                }
                normalized = match;
                return true;
            case "integer" or "real":
                if (!TryToBase(info, text, out var value, out error))
                {
                    return false;
                }
                if (info.VarType == "integer")
                {
                    value = Math.Round(value, MidpointRounding.AwayFromZero);
                }
                if (info.MinVal is not null && info.MaxVal is not null
                    && double.TryParse(info.MinVal, NumberStyles.Float, CultureInfo.InvariantCulture, out var min)
                    && double.TryParse(info.MaxVal, NumberStyles.Float, CultureInfo.InvariantCulture, out var max)
                    && (value < min || value > max))
                {
                    error = $"'{raw}' is outside the allowed range {Display(info, info.MinVal)} .. {Display(info, info.MaxVal)}";
                    return false;
                }
                normalized = value.ToString("R", CultureInfo.InvariantCulture);
                return true;
            default:
                return true;
        }
    }

    /// <summary>Normalises, or keeps the text as written when it does not parse (so it still compares).</summary>
    public static string Normalize(ParameterInfo info, string? raw) =>
        raw is null ? "" : SettingLists.Canonical(info.Name, raw) ?? (TryNormalize(info, raw, out var n, out _) ? Alias(info, n) : raw);

    /// <summary>For comparison only: an enum alias pg_settings shows under another name (wal_compression = on runs as pglz).</summary>
    private static string Alias(ParameterInfo info, string normalized) =>
        info.VarType == "enum" && EnumAliases.FirstOrDefault(a => a.Name == info.Name && a.Alias == normalized) is { Name: not null } alias ? alias.Value : normalized;

    public static bool? ParseBool(string text) => text.ToLowerInvariant() switch
    {
        "on" or "true" or "yes" or "1" or "t" or "y" => true,
        "off" or "false" or "no" or "0" or "f" or "n" => false,
        _ => null,
    };

    private static bool TryToBase(ParameterInfo info, string text, out double value, out string? error)
    {
        value = 0;
        error = null;
        if (info.VarType == "integer" && TryParseCInteger(text, out var integer))
        {
            value = integer;
            return true;
        }
        var split = 0;
        while (split < text.Length && (char.IsAsciiDigit(text[split]) || text[split] is '.' or '-' or '+' or 'e' or 'E'))
        {
            // an 'e' followed by a letter is the start of a unit, not an exponent
            if (text[split] is 'e' or 'E' && (split + 1 >= text.Length || !(char.IsAsciiDigit(text[split + 1]) || text[split + 1] is '-' or '+')))
            {
                break;
            }
            split++;
        }
        var number = text[..split];
        var unit = text[split..].Trim();
        if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var n))
        {
            error = $"'{text}' is not a number" + (info.Unit is null ? "" : $" (with an optional unit; the parameter's unit is {info.Unit})");
            return false;
        }
        if (unit.Length == 0)
        {
            value = n;
            return true;
        }
        var (family, baseFactor) = BaseUnit(info.Unit);
        if (family is null)
        {
            error = $"'{text}': parameter {info.Name} takes no unit";
            return false;
        }
        var factor = family.FirstOrDefault(u => u.Unit == unit).Factor;
        if (factor == 0)
        {
            error = $"'{text}': invalid unit '{unit}' (valid: {string.Join(", ", family.Select(u => u.Unit))})";
            return false;
        }
        value = n * factor / baseFactor;
        return true;
    }

    /// <summary>PostgreSQL reads integers with strtol(…, 0): 0600 is octal (log_file_mode), 0x10 is hex.</summary>
    private static bool TryParseCInteger(string text, out long value)
    {
        value = 0;
        var negative = text.StartsWith('-');
        var body = text.TrimStart('-', '+');
        try
        {
            if (body.Length > 2 && body[0] == '0' && body[1] is 'x' or 'X' && body[2..].All(char.IsAsciiHexDigit))
            {
                value = Convert.ToInt64(body[2..], 16);
            }
            else if (body.Length > 1 && body[0] == '0' && body.All(c => c is >= '0' and <= '7'))
            {
                value = Convert.ToInt64(body, 8);
            }
            else
            {
                return false;
            }
        }
        catch (OverflowException)
        {
            return false;
        }
        value = negative ? -value : value;
        return true;
    }

    /// <summary>The unit family and the size of one base unit: "8kB" → (memory, 8192), "s" → (time, 1000).</summary>
    private static ((string Unit, double Factor)[]? Family, double Factor) BaseUnit(string? unit)
    {
        if (string.IsNullOrEmpty(unit))
        {
            return (null, 1);
        }
        var digits = new string([.. unit.TakeWhile(char.IsAsciiDigit)]);
        var multiplier = digits.Length == 0 ? 1 : double.Parse(digits, CultureInfo.InvariantCulture);
        var name = unit[digits.Length..];
        foreach (var family in new[] { MemoryUnits, TimeUnits })
        {
            var match = family.FirstOrDefault(u => u.Unit == name);
            if (match.Factor != 0)
            {
                return (family, match.Factor * multiplier);
            }
        }
        return (null, 1);
    }

    /// <summary>Shows a value as SHOW would: a base-unit number in the largest exact unit (300 s → 5min).</summary>
    public static string Display(ParameterInfo info, string? raw)
    {
        if (raw is null)
        {
            return "";
        }
        var normalized = TryNormalize(info, raw, out var n, out _) ? n : raw; // as written: wal_compression = on stays on
        if (info.VarType != "integer" || !long.TryParse(normalized, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
        {
            return normalized;
        }
        var (family, baseFactor) = BaseUnit(info.Unit);
        if (family is null || value <= 0)
        {
            return normalized;
        }
        var amount = value * baseFactor;
        foreach (var (unit, factor) in family)
        {
            if (factor >= 1 && amount % factor == 0)
            {
                return (amount / factor).ToString("0", CultureInfo.InvariantCulture) + unit;
            }
            if (factor < 1)
            {
                return (amount / factor).ToString("0", CultureInfo.InvariantCulture) + unit;
            }
        }
        return normalized;
    }
}
