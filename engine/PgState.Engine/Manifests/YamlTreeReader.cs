using System.Text;
using System.Text.RegularExpressions;
using PgState.Engine.Diagnostics;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace PgState.Engine.Manifests;

/// <summary>
/// Reads YAML into <see cref="YamlNode"/>s that remember their source position. Plain scalars are
/// typed by the YAML 1.2 core schema; duplicate keys and bad ${env:NAME} references become
/// diagnostics. Hostile input is bounded: nesting depth, nodes per document (aliases count as
/// what they expand to), so a 1 KB alias bomb or a 50,000-deep flow is an error, not a crash.
/// </summary>
internal sealed partial class YamlTreeReader(string file, Func<string, string?> environment, DiagnosticBag diagnostics)
{
    public const int MaxDepth = 64;
    public const int MaxNodes = 400_000;
    public const int MaxAliasExpansion = 20_000;

    private readonly Dictionary<string, YamlNode> _anchors = new(StringComparer.Ordinal);
    private int _nodes;
    private int _aliasNodes;

    public sealed record Document(YamlNode? Root, SourcePosition Position);

    private sealed class LimitExceeded(DiagnosticCode code, string message, Mark at) : Exception(message)
    {
        public DiagnosticCode Code { get; } = code;

        public Mark At { get; } = at;
    }

    public IReadOnlyList<Document> Read(string text)
    {
        var documents = new List<Document>();
        var parser = new Parser(new StringReader(text));
        try
        {
            parser.Consume<StreamStart>();
            while (parser.TryConsume<DocumentStart>(out var start))
            {
                _anchors.Clear();
                _nodes = 0;
                _aliasNodes = 0;
                var root = parser.Accept<DocumentEnd>(out _) ? null : ReadNode(parser, 0);
                parser.Consume<DocumentEnd>();
                if (root is not null && root is not YamlScalar { IsNull: true })
                {
                    documents.Add(new Document(root, At(start.Start)));
                }
            }
            parser.Consume<StreamEnd>();
        }
        catch (LimitExceeded e)
        {
            diagnostics.Error(e.Code, e.Message, At(e.At));
        }
        catch (YamlException e)
        {
            var message = e.InnerException?.Message ?? e.Message;
            // YamlDotNet prefixes "(Line: 1, Col: 2, ...): "; the position is ours to print.
            var cut = message.IndexOf("): ", StringComparison.Ordinal);
            if (message.StartsWith("(Line", StringComparison.Ordinal) && cut > 0)
            {
                message = message[(cut + 3)..];
            }
            diagnostics.Error(DiagnosticCodes.YamlSyntax, "YAML syntax error: " + message + FlowHint(text, e.Start), At(e.Start));
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or FormatException or OverflowException)
        {
            // YamlDotNet's scanner can fail this way on an unterminated flow collection.
            var mark = parser.Current?.Start ?? Mark.Empty;
            diagnostics.Error(DiagnosticCodes.YamlSyntax, "YAML syntax error: unterminated [ or { collection" + FlowHint(text, mark), At(mark));
        }
        return documents;
    }

    /// <summary>A ${env:…} inside a {…} flow mapping is a common cause of YAML errors: say so.</summary>
    private static string FlowHint(string text, Mark mark)
    {
        var lines = text.Split('\n');
        var index = (int)Math.Clamp(mark.Line - 1, 0, Math.Max(0, lines.Length - 1));
        for (var i = Math.Max(0, index - 1); i <= Math.Min(lines.Length - 1, index + 1); i++)
        {
            var line = lines[i];
            if (line.Contains("${", StringComparison.Ordinal) && line.Contains('{', StringComparison.Ordinal)
                && line.IndexOf('{', StringComparison.Ordinal) != line.IndexOf("${", StringComparison.Ordinal) + 1)
            {
                return " (hint: a ${env:…} value inside a {…} flow mapping must be quoted, \"${env:NAME}\", or written in block style)";
            }
        }
        return "";
    }

    private SourcePosition At(Mark mark) => new(file, (int)Math.Clamp(mark.Line, 1, int.MaxValue), (int)Math.Clamp(mark.Column, 1, int.MaxValue));

    private void Count(Mark at, int n = 1)
    {
        _nodes += n;
        if (_nodes > MaxNodes)
        {
            throw new LimitExceeded(DiagnosticCodes.YamlTooManyNodes, $"the document has more than {MaxNodes:N0} nodes (aliases count as what they expand to); pgstate refuses it", at);
        }
    }

    private YamlNode ReadNode(IParser parser, int depth)
    {
        var current = parser.Current!;
        if (depth > MaxDepth)
        {
            throw new LimitExceeded(DiagnosticCodes.YamlTooDeep, $"nesting deeper than {MaxDepth} levels; pgstate refuses it", current.Start);
        }
        if (parser.TryConsume<AnchorAlias>(out var alias))
        {
            if (_anchors.TryGetValue(alias.Value.Value, out var target))
            {
                var size = Size(target);
                _aliasNodes += size;
                if (_aliasNodes > MaxAliasExpansion)
                {
                    throw new LimitExceeded(DiagnosticCodes.YamlTooManyNodes, $"aliases expand to more than {MaxAliasExpansion:N0} nodes; pgstate refuses it (an alias bomb?)", alias.Start);
                }
                Count(alias.Start, size);
                return Clone(target, At(alias.Start));
            }
            diagnostics.Error(DiagnosticCodes.UnknownAlias, $"unknown alias '*{alias.Value.Value}'", At(alias.Start));
            return new YamlScalar(At(alias.Start), "", ScalarKind.Null);
        }

        Count(current.Start);
        YamlNode node;
        string anchor;
        if (parser.TryConsume<Scalar>(out var scalar))
        {
            node = ReadScalar(scalar);
            anchor = scalar.Anchor.IsEmpty ? "" : scalar.Anchor.Value;
        }
        else if (parser.TryConsume<SequenceStart>(out var seqStart))
        {
            var sequence = new YamlSequence(At(seqStart.Start));
            while (!parser.TryConsume<SequenceEnd>(out _))
            {
                sequence.Add(ReadNode(parser, depth + 1));
            }
            node = sequence;
            anchor = seqStart.Anchor.IsEmpty ? "" : seqStart.Anchor.Value;
        }
        else if (parser.TryConsume<MappingStart>(out var mapStart))
        {
            node = ReadMapping(parser, mapStart, depth);
            anchor = mapStart.Anchor.IsEmpty ? "" : mapStart.Anchor.Value;
        }
        else
        {
            throw new YamlException(current.Start, current.End, $"unexpected {current.GetType().Name}");
        }

        if (anchor.Length > 0)
        {
            _anchors[anchor] = node;
        }
        return node;
    }

    private YamlMapping ReadMapping(IParser parser, MappingStart mapStart, int depth)
    {
        var mapping = new YamlMapping(At(mapStart.Start));
        while (!parser.TryConsume<MappingEnd>(out _))
        {
            var keyStart = At(parser.Current!.Start);
            var keyNode = ReadNode(parser, depth + 1);
            var value = ReadNode(parser, depth + 1);
            if (keyNode is not YamlScalar { IsNull: false } keyScalar)
            {
                diagnostics.Error(DiagnosticCodes.MappingKeyNotScalar, "a mapping key must be a plain value", keyStart);
                continue;
            }
            if (!mapping.TryAdd(keyScalar.Text, keyStart, value))
            {
                var first = mapping[keyScalar.Text]!.KeyPosition;
                diagnostics.Error(DiagnosticCodes.DuplicateKey, $"duplicate key '{keyScalar.Text}' (first defined at {first?.Line}:{first?.Column})", keyStart);
            }
        }
        return mapping;
    }

    private static int Size(YamlNode node) => node switch
    {
        YamlMapping m => 1 + m.Values.Sum(Size),
        YamlSequence s => 1 + s.Items.Sum(Size),
        _ => 1,
    };

    /// <summary>An alias is a copy of its anchor's node, positioned where the alias is written.</summary>
    private static YamlNode Clone(YamlNode node, SourcePosition at)
    {
        switch (node)
        {
            case YamlMapping m:
                var mapping = new YamlMapping(at);
                foreach (var v in m.Values)
                {
                    mapping.TryAdd(v.Key!, at, Clone(v, at));
                }
                return mapping;
            case YamlSequence s:
                var sequence = new YamlSequence(at);
                foreach (var item in s.Items)
                {
                    sequence.Add(Clone(item, at));
                }
                return sequence;
            case YamlScalar x:
                return new YamlScalar(at, x.Text, x.Kind);
            default:
                throw new InvalidOperationException("unknown node");
        }
    }

    private YamlScalar ReadScalar(Scalar scalar)
    {
        var position = At(scalar.Start);
        var explicitString = !scalar.Tag.IsEmpty && scalar.Tag.Value == "tag:yaml.org,2002:str";
        var text = Interpolate(scalar.Value, position);
        return scalar.Style == ScalarStyle.Plain && !explicitString
            ? new YamlScalar(position, text, TypePlain(text))
            : new YamlScalar(position, text, ScalarKind.String);
    }

    /// <summary>YAML 1.2 core schema: null, bool, int, float, else string.</summary>
    internal static ScalarKind TypePlain(string text)
    {
        switch (text)
        {
            case "" or "~" or "null" or "Null" or "NULL":
                return ScalarKind.Null;
            case "true" or "True" or "TRUE" or "false" or "False" or "FALSE":
                return ScalarKind.Boolean;
        }
        if (IntPattern().IsMatch(text))
        {
            return ScalarKind.Integer;
        }
        return FloatPattern().IsMatch(text) ? ScalarKind.Float : ScalarKind.String;
    }

    private string Interpolate(string text, SourcePosition position)
    {
        if (!text.Contains("${", StringComparison.Ordinal))
        {
            return text;
        }
        var result = new StringBuilder();
        var i = 0;
        while (i < text.Length)
        {
            if (text[i] == '$' && i + 2 < text.Length && text[i + 1] == '$' && text[i + 2] == '{')
            {
                result.Append("${");   // $${ escapes a literal ${
                i += 3;
                continue;
            }
            if (text[i] == '$' && i + 1 < text.Length && text[i + 1] == '{')
            {
                var close = text.IndexOf('}', i);
                var reference = close < 0 ? text[i..] : text[i..(close + 1)];
                var match = EnvReference().Match(reference);
                if (close < 0 || !match.Success)
                {
                    diagnostics.Error(DiagnosticCodes.BadEnvReference,
                        $"bad reference '{Printable(reference)}': write ${{env:NAME}} with NAME made of letters, digits and _ (or $${{ for a literal)",
                        position);
                    return text;
                }
                var name = match.Groups[1].Value;
                var value = environment(name);
                if (value is null)
                {
                    diagnostics.Error(DiagnosticCodes.EnvNotSet, $"environment variable '{name}' is not set (referenced as ${{env:{name}}})", position);
                    return text;
                }
                result.Append(value);
                i = close + 1;
                continue;
            }
            result.Append(text[i]);
            i++;
        }
        return result.ToString();
    }

    internal static string Printable(string text) => TextSafety.Printable(text);

    [GeneratedRegex(@"^[-+]?[0-9]+\z")]
    private static partial Regex IntPattern();

    [GeneratedRegex(@"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\z")]
    private static partial Regex FloatPattern();

    [GeneratedRegex(@"^\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}\z")]
    private static partial Regex EnvReference();
}
