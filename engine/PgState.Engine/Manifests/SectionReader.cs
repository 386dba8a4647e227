using System.Globalization;
using PgState.Engine.Diagnostics;

namespace PgState.Engine.Manifests;

/// <summary>A value bound from a manifest, with where it was written (or, for a default, where its parent is).</summary>
public readonly record struct Located<T>(T Value, SourcePosition Position, bool IsDefault = false)
{
    public override string ToString() => Value?.ToString() ?? "";
}

/// <summary>
/// Typed reads of a validated manifest tree. The schema has checked types already and filled in
/// defaults, so a read of the wrong type returns null (the schema error is reported) rather than
/// throwing: binding runs even when validation found problems, so that every problem of every
/// stage is reported in one run.
/// </summary>
public static class SectionReader
{
    public static YamlMapping? Mapping(this YamlMapping? m, string key) => m?[key] as YamlMapping;

    public static YamlSequence? Sequence(this YamlMapping? m, string key) => m?[key] as YamlSequence;

    public static IEnumerable<YamlMapping> Mappings(this YamlMapping? m, string key) => m.Sequence(key)?.Items.OfType<YamlMapping>() ?? [];

    public static YamlScalar? Scalar(this YamlMapping? m, string key) => m?[key] as YamlScalar;

    /// <summary>A string value (a quoted or plain string scalar); null when absent or of another type.</summary>
    public static string? String(this YamlMapping? m, string key) => m.Scalar(key) is { Kind: ScalarKind.String } s ? s.Text : null;

    public static Located<string>? LocatedString(this YamlMapping? m, string key) =>
        m.Scalar(key) is { Kind: ScalarKind.String } s ? new Located<string>(s.Text, s.Position, s.IsDefault) : null;

    public static bool? Bool(this YamlMapping? m, string key) => m.Scalar(key)?.AsBoolean;

    /// <summary>An integer that fits in an int; a larger one is reported once and read as null.</summary>
    public static int? Int32(this YamlMapping? m, string key, DiagnosticBag diagnostics)
    {
        if (m.Scalar(key) is not { Kind: ScalarKind.Integer } s)
        {
            return null;
        }
        if (int.TryParse(s.Text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v))
        {
            return v;
        }
        diagnostics.Error(DiagnosticCodes.Schema, $"{s.Path}: {s.Text} is out of range (-2147483648 .. 2147483647)", s.Position);
        return null;
    }

    /// <summary>A list of strings: one string or a list of them (nameList in the schema).</summary>
    public static IReadOnlyList<Located<string>> Strings(this YamlMapping? m, string key) => m?[key] switch
    {
        YamlScalar { Kind: ScalarKind.String } s => [new Located<string>(s.Text, s.Position)],
        YamlSequence seq => [.. seq.Items.OfType<YamlScalar>().Where(s => s.Kind == ScalarKind.String).Select(s => new Located<string>(s.Text, s.Position))],
        _ => [],
    };

    /// <summary>Any scalar as the text a person wrote (booleans as on/off when asked).</summary>
    public static string ScalarText(this YamlScalar s, bool booleansAsOnOff = false) => s.Kind switch
    {
        ScalarKind.Boolean => booleansAsOnOff ? (s.AsBoolean == true ? "on" : "off") : (s.AsBoolean == true ? "true" : "false"),
        ScalarKind.Null => "",
        _ => s.Text,
    };

    /// <summary>A duration (500ms, 30s, 5min, 1h, 2d); an out-of-range one is reported and read as null.</summary>
    public static Located<TimeSpan>? Duration(this YamlMapping? m, string key, DiagnosticBag diagnostics)
    {
        if (m.Scalar(key) is not { Kind: ScalarKind.String } s)
        {
            return null;
        }
        if (Durations.TryParse(s.Text, out var value, out var error))
        {
            return new Located<TimeSpan>(value, s.Position, s.IsDefault);
        }
        diagnostics.Error(DiagnosticCodes.BadDuration, $"{s.Path}: {error}", s.Position);
        return null;
    }

    /// <summary>A size (512kB, 64MB, 10GB, 1TB); an out-of-range one is reported and read as null.</summary>
    public static Located<long>? Size(this YamlMapping? m, string key, DiagnosticBag diagnostics)
    {
        if (m.Scalar(key) is not { Kind: ScalarKind.String } s)
        {
            return null;
        }
        if (Sizes.TryParse(s.Text, out var value, out var error))
        {
            return new Located<long>(value, s.Position, s.IsDefault);
        }
        diagnostics.Error(DiagnosticCodes.BadSize, $"{s.Path}: {error}", s.Position);
        return null;
    }

    public static SecretReference? Secret(this YamlMapping? m, string key) =>
        m.Mapping(key) is { } s && (s.String("fromEnv") is { } env ? new SecretReference(env, null, s.Position)
            : s.String("fromFile") is { } file ? new SecretReference(null, file, s.Position) : null) is { } r ? r : null;
}

public static class Sizes
{
    /// <summary>Parses the schema's sizes: 512kB, 64MB, 10GB, 1TB (1024-based, like PostgreSQL).</summary>
    public static bool TryParse(string text, out long bytes, out string? error)
    {
        bytes = 0;
        error = null;
        var digits = new string([.. text.TakeWhile(char.IsAsciiDigit)]);
        var shift = text[digits.Length..] switch
        {
            "kB" => 10,
            "MB" => 20,
            "GB" => 30,
            "TB" => 40,
            _ => -1,
        };
        if (digits.Length == 0 || shift < 0)
        {
            error = $"\"{TextSafety.Printable(text)}\" is not a size such as 512MB or 10GB";
            return false;
        }
        if (!long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n > long.MaxValue >> shift)
        {
            error = $"\"{text}\" is too large";
            return false;
        }
        bytes = n << shift;
        return true;
    }

    public static long Parse(string text) => TryParse(text, out var b, out var e) ? b : throw new FormatException(e);
}

public static class Durations
{
    /// <summary>The longest duration pgstate accepts: 100 years.</summary>
    public static readonly TimeSpan Max = TimeSpan.FromDays(36_525);

    /// <summary>Parses 500ms, 30s, 5min, 1h, 2d (the schema's duration pattern).</summary>
    public static bool TryParse(string text, out TimeSpan value, out string? error)
    {
        value = default;
        error = null;
        var digits = new string([.. text.TakeWhile(char.IsAsciiDigit)]);
        var unit = text[digits.Length..];
        double factorMs = unit switch
        {
            "ms" => 1,
            "s" => 1_000,
            "min" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => 0,
        };
        if (digits.Length == 0 || factorMs == 0)
        {
            error = $"\"{TextSafety.Printable(text)}\" is not a duration such as 30s, 5min or 1h";
            return false;
        }
        if (!double.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n * factorMs > Max.TotalMilliseconds)
        {
            error = $"\"{text}\" is longer than the 100 years pgstate accepts";
            return false;
        }
        value = TimeSpan.FromMilliseconds(n * factorMs);
        return true;
    }

    public static TimeSpan Parse(string text) => TryParse(text, out var v, out var e) ? v : throw new FormatException(e);

    /// <summary>The largest exact unit: 300 s → 5min, 90 s → 90s.</summary>
    public static string Format(TimeSpan value)
    {
        var ms = (long)value.TotalMilliseconds;
        foreach (var (unit, factor) in new[] { ("d", 86_400_000L), ("h", 3_600_000L), ("min", 60_000L), ("s", 1_000L) })
        {
            if (ms != 0 && ms % factor == 0)
            {
                return (ms / factor).ToString(CultureInfo.InvariantCulture) + unit;
            }
        }
        return ms.ToString(CultureInfo.InvariantCulture) + "ms";
    }
}
