using System.Text;

namespace PgState.Modules.Hba;

/// <summary>A rule as read from a file, with its 1-based line number (the first physical line of a continued one).</summary>
public sealed record HbaFileRule(int Line, HbaRule Rule, string Text)
{
    /// <summary>The included file the rule lives in (PostgreSQL 16+ include directives); null for pg_hba.conf itself.</summary>
    public string? File { get; init; }
}

/// <summary>An include directive (PostgreSQL 16 and later): include, include_if_exists, include_dir.</summary>
public sealed record HbaInclude(int Line, string Kind, string Path);

/// <summary>A line PostgreSQL would not accept as a rule (too few fields, unknown type …).</summary>
public sealed record HbaFileProblem(int Line, string Text);

/// <summary>
/// pg_hba.conf as bytes: its rules, include directives, and where pgstate's managed block sits.
/// pgstate works on bytes so that the lines it does not own are written back exactly (a latin-1
/// byte or a BOM stays as it was); lines are decoded only to be parsed.
/// </summary>
public sealed class HbaFile
{
    public const string BlockBegin = "# BEGIN pgstate";
    public const string BlockEnd = "# END pgstate";

    private static readonly string[] Types = ["local", "host", "hostssl", "hostnossl", "hostgssenc", "hostnogssenc"];

    private HbaFile(byte[] bytes, IReadOnlyList<HbaFileRule> rules, IReadOnlyList<HbaInclude> includes, IReadOnlyList<HbaFileProblem> problems, (int Start, int End)? block)
    {
        Bytes = bytes;
        Rules = rules;
        Includes = includes;
        Problems = problems;
        Block = block;
    }

    public byte[] Bytes { get; }

    public IReadOnlyList<HbaFileRule> Rules { get; }

    public IReadOnlyList<HbaInclude> Includes { get; }

    public IReadOnlyList<HbaFileProblem> Problems { get; }

    /// <summary>1-based lines of the BEGIN and END markers, when the file has a managed block.</summary>
    public (int Start, int End)? Block { get; }

    /// <summary>Rules inside the managed block (managed-block mode) or all rules (authoritative).</summary>
    public IReadOnlyList<HbaFileRule> RulesIn((int Start, int End)? range) =>
        range is { } r ? [.. Rules.Where(x => x.Line > r.Start && x.Line < r.End)] : Rules;

    public static HbaFile Parse(string text, int major = 16) => Parse(Encoding.UTF8.GetBytes(text), major);

    /// <summary>Splits bytes into physical lines (without the '\n'; a final line without one is kept).</summary>
    public static List<byte[]> Lines(byte[] bytes)
    {
        var lines = new List<byte[]>();
        var start = 0;
        for (var i = 0; i < bytes.Length; i++)
        {
            if (bytes[i] == (byte)'\n')
            {
                lines.Add(bytes[start..i]);
                start = i + 1;
            }
        }
        if (start < bytes.Length)
        {
            lines.Add(bytes[start..]);
        }
        return lines;
    }

    /// <summary>A line's text for parsing: UTF-8 when it is, else byte for byte (latin-1), so structure characters survive.</summary>
    public static string Decode(byte[] line)
    {
        try
        {
            return new UTF8Encoding(false, true).GetString(line);
        }
        catch (DecoderFallbackException)
        {
            return Encoding.Latin1.GetString(line);
        }
    }

    /// <summary>
    /// Parses the file the way PostgreSQL tokenises it: blank-separated fields (space, tab, CR),
    /// "quoted" tokens with "" for a quote, # comments outside quotes, comma lists; an address
    /// without / followed by its mask; from PostgreSQL 16, a line ending in a backslash continues
    /// on the next one and include directives are recognised.
    /// </summary>
    public static HbaFile Parse(byte[] bytes, int major = 16)
    {
        var rules = new List<HbaFileRule>();
        var includes = new List<HbaInclude>();
        var problems = new List<HbaFileProblem>();
        int? begin = null;
        (int, int)? block = null;
        var lines = Lines(bytes);
        for (var i = 0; i < lines.Count; i++)
        {
            var lineNumber = i + 1;
            var text = Decode(lines[i]);
            if (i == 0 && text.StartsWith('\uFEFF'))
            {
                text = text[1..];
            }
            var trimmed = text.Trim();
            if (trimmed.StartsWith(BlockBegin, StringComparison.Ordinal))
            {
                begin = lineNumber;
                continue;
            }
            if (trimmed.StartsWith(BlockEnd, StringComparison.Ordinal) && begin is { } b)
            {
                block ??= (b, lineNumber);
                continue;
            }
            while (major >= 16 && text.EndsWith('\\') && i + 1 < lines.Count)
            {
                text = text[..^1] + Decode(lines[++i]);
            }
            var fields = Tokenize(text);
            if (fields.Count == 0)
            {
                continue;
            }
            var first = fields[0][0];
            if (major >= 16 && !first.Quoted && first.Text is "include" or "include_if_exists" or "include_dir" && fields.Count >= 2)
            {
                includes.Add(new HbaInclude(lineNumber, first.Text, fields[1][0].Text));
                continue;
            }
            if (ToRule(fields) is { } rule)
            {
                rules.Add(new HbaFileRule(lineNumber, rule, text.Trim()));
            }
            else
            {
                problems.Add(new HbaFileProblem(lineNumber, text.Trim()));
            }
        }
        return new HbaFile(bytes, rules, includes, problems, block);
    }

    private static HbaRule? ToRule(List<List<(string Text, bool Quoted)>> fields)
    {
        if (fields.Count < 4 || fields[0].Count != 1 || !Types.Contains(fields[0][0].Text))
        {
            return null;
        }
        var type = fields[0][0].Text;
        var index = 3;
        string? address = null;
        if (type != "local")
        {
            address = fields[3][0].Text;
            index = 4;
            if (!address.Contains('/', StringComparison.Ordinal) && System.Net.IPAddress.TryParse(address, out _) && fields.Count > 5)
            {
                address += " " + fields[4][0].Text;
                index = 5;
            }
        }
        if (fields.Count <= index)
        {
            return null;
        }
        var method = fields[index][0].Text;
        var options = fields.Skip(index + 1).Select(f => f[0].Text).Select(o =>
        {
            var eq = o.IndexOf('=', StringComparison.Ordinal);
            return eq < 0 ? KeyValuePair.Create(o, "") : KeyValuePair.Create(o[..eq], o[(eq + 1)..]);
        });
        return HbaRule.Create(type,
            fields[1].Select(t => HbaName.FromToken(t.Text, t.Quoted, userField: false)),
            fields[2].Select(t => HbaName.FromToken(t.Text, t.Quoted, userField: true)),
            address, method, options);
    }

    private static bool IsBlank(char c) => c is ' ' or '\t' or '\r';

    /// <summary>Splits a line into fields; each field is a comma list of tokens (PostgreSQL's next_token).</summary>
    internal static List<List<(string Text, bool Quoted)>> Tokenize(string line)
    {
        var fields = new List<List<(string, bool)>>();
        var i = 0;
        while (i < line.Length)
        {
            while (i < line.Length && IsBlank(line[i]))
            {
                i++;
            }
            if (i >= line.Length || line[i] == '#')
            {
                break;
            }
            var field = new List<(string, bool)>();
            while (true)
            {
                var token = new StringBuilder();
                var quoted = false;
                var inQuotes = false;
                var wasQuote = false;
                while (i < line.Length && (inQuotes || !IsBlank(line[i])))
                {
                    var c = line[i];
                    if (c == '#' && !inQuotes)
                    {
                        break;
                    }
                    if (c == ',' && !inQuotes)
                    {
                        break;
                    }
                    if (c != '"' || wasQuote)
                    {
                        token.Append(c);
                    }
                    // A literal double quote is two double quotes.
                    wasQuote = inQuotes && c == '"' && !wasQuote;
                    if (c == '"')
                    {
                        inQuotes = !inQuotes;
                        quoted = true;
                    }
                    i++;
                }
                field.Add((token.ToString(), quoted));
                if (i < line.Length && line[i] == ',' && !inQuotes)
                {
                    i++;
                    continue;
                }
                break;
            }
            fields.Add(field);
            if (i < line.Length && line[i] == '#')
            {
                break;
            }
        }
        return fields;
    }
}
