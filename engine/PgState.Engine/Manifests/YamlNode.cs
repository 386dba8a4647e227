using System.Globalization;
using PgState.Engine.Diagnostics;

namespace PgState.Engine.Manifests;

/// <summary>A node of a manifest document, with the position it was read from and its place in the tree.</summary>
public abstract class YamlNode(SourcePosition position)
{
    public SourcePosition Position { get; } = position;

    public YamlNode? Parent { get; private set; }

    /// <summary>The key under which the parent mapping holds this node (null for sequence items and the root).</summary>
    public string? Key { get; private set; }

    /// <summary>Where the key was written, for "point at the key" messages.</summary>
    public SourcePosition? KeyPosition { get; private set; }

    /// <summary>The index in the parent sequence (-1 otherwise).</summary>
    public int Index { get; private set; } = -1;

    /// <summary>True when the node was not written but filled in from the schema's default.</summary>
    public bool IsDefault { get; internal init; }

    internal void Attach(YamlNode parent, string? key, SourcePosition? keyPosition, int index)
    {
        Parent = parent;
        Key = key;
        KeyPosition = keyPosition;
        Index = index;
    }

    /// <summary>A dotted path for messages: spec.archiving.mode, spec.hba.rules[2].</summary>
    public string Path
    {
        get
        {
            var parts = new List<string>();
            for (var n = this; n.Parent is not null; n = n.Parent)
            {
                parts.Add(n.Key is not null ? "." + n.Key : $"[{n.Index}]");
            }
            parts.Reverse();
            return string.Concat(parts).TrimStart('.');
        }
    }

    /// <summary>The key's position when this node sits under a key, else its own.</summary>
    public SourcePosition KeyOrPosition => KeyPosition ?? Position;

    public abstract string KindName { get; }
}

public enum ScalarKind
{
    Null,
    Boolean,
    Integer,
    Float,
    String,
}

/// <summary>A scalar typed by the YAML 1.2 core schema (plain scalars) or a string (quoted or tagged !!str).</summary>
public sealed class YamlScalar(SourcePosition position, string text, ScalarKind kind) : YamlNode(position)
{
    public string Text { get; } = text;

    public ScalarKind Kind { get; } = kind;

    public bool IsNull => Kind == ScalarKind.Null;

    public bool? AsBoolean => Kind == ScalarKind.Boolean ? Text is "true" or "True" or "TRUE" : null;

    public bool TryGetInt64(out long value)
    {
        value = 0;
        return Kind == ScalarKind.Integer && long.TryParse(Text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value);
    }

    /// <summary>The numeric value for range checks; integers beyond decimal and floats come as double.</summary>
    public double? AsDouble => Kind is ScalarKind.Integer or ScalarKind.Float
        && double.TryParse(Text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : null;

    public decimal? AsDecimal => Kind is ScalarKind.Integer or ScalarKind.Float
        && decimal.TryParse(Text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : null;

    public override string KindName => Kind switch
    {
        ScalarKind.Null => "null",
        ScalarKind.Boolean => "boolean",
        ScalarKind.Integer => "integer",
        ScalarKind.Float => "number",
        _ => "string",
    };

    /// <summary>How the value is shown in messages: "text" for strings, bare for others.</summary>
    public string Shown => Kind switch
    {
        ScalarKind.String => "\"" + Text + "\"",
        ScalarKind.Null => "null",
        ScalarKind.Boolean => AsBoolean == true ? "true" : "false",
        _ => Text,
    };

    internal static YamlScalar Default(YamlNode parent, string text, ScalarKind kind) =>
        new(parent.Position, text, kind) { IsDefault = true };
}

public sealed class YamlSequence(SourcePosition position) : YamlNode(position)
{
    private readonly List<YamlNode> _items = [];

    public IReadOnlyList<YamlNode> Items => _items;

    public int Count => _items.Count;

    internal void Add(YamlNode node)
    {
        node.Attach(this, null, null, _items.Count);
        _items.Add(node);
    }

    public override string KindName => "a list";
}

public sealed class YamlMapping(SourcePosition position) : YamlNode(position)
{
    private readonly List<YamlNode> _values = [];
    private readonly Dictionary<string, YamlNode> _byKey = new(StringComparer.Ordinal);

    /// <summary>Entries in the order written.</summary>
    public IReadOnlyList<YamlNode> Values => _values;

    public int Count => _values.Count;

    public YamlNode? this[string key] => _byKey.GetValueOrDefault(key);

    public bool Contains(string key) => _byKey.ContainsKey(key);

    /// <summary>Adds an entry; false when the key is there already.</summary>
    internal bool TryAdd(string key, SourcePosition keyPosition, YamlNode value)
    {
        if (!_byKey.TryAdd(key, value))
        {
            return false;
        }
        value.Attach(this, key, keyPosition, -1);
        _values.Add(value);
        return true;
    }

    public override string KindName => "a mapping";
}
