using Npgsql;

namespace PgState.Engine.Host;

/// <summary>The rows of one declared catalog query, available once the engine has run the batch.</summary>
public sealed class CatalogQuery<T>
{
    private readonly List<T> _rows = [];

    internal bool Executed { get; set; }

    public IReadOnlyList<T> Rows => Executed ? _rows : throw new InvalidOperationException("the catalog batch has not run yet");

    internal void Add(T row) => _rows.Add(row);

    internal void Clear() => _rows.Clear();
}

/// <summary>
/// Catalog queries that modules declare before a plan; the engine sends all of them in one
/// NpgsqlBatch (one round trip) and hands each its rows. Parameters are bind parameters ($1 …).
/// </summary>
public sealed class CatalogReads
{
    private readonly List<(string Sql, IReadOnlyList<object?> Parameters, Action<NpgsqlDataReader> Read, Action Reset, Action Done, string? Owner)> _queries = [];

    /// <summary>Who declares the next queries (the engine sets each module's name), so a failing query can be named.</summary>
    public string? Owner { get; set; }

    public int Count => _queries.Count;

    public CatalogQuery<T> Add<T>(string sql, Func<NpgsqlDataReader, T> row) => Add(sql, row, []);

    /// <summary>A query with bind parameters $1, $2 … (an array is one parameter).</summary>
    public CatalogQuery<T> Add<T>(string sql, Func<NpgsqlDataReader, T> row, IReadOnlyList<object?> parameters)
    {
        var query = new CatalogQuery<T>();
        _queries.Add((sql, parameters, r => query.Add(row(r)), query.Clear, () => query.Executed = true, Owner));
        return query;
    }

    public async Task ExecuteAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        if (_queries.Count == 0)
        {
            return;
        }
        await using var batch = new NpgsqlBatch(connection);
        foreach (var (sql, parameters, _, reset, _, _) in _queries)
        {
            reset();
            var command = new NpgsqlBatchCommand(sql);
            foreach (var p in parameters)
            {
                command.Parameters.Add(new NpgsqlParameter { Value = p ?? DBNull.Value });
            }
            batch.BatchCommands.Add(command);
        }
        var current = 0;
        try
        {
            await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
            for (; current < _queries.Count; current++)
            {
                if (current > 0 && !await reader.NextResultAsync(cancellationToken))
                {
                    throw new InvalidOperationException("the catalog batch returned fewer results than queries");
                }
                while (await reader.ReadAsync(cancellationToken))
                {
                    _queries[current].Read(reader);
                }
                _queries[current].Done();
            }
        }
        catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.UndefinedColumn or PostgresErrorCodes.UndefinedTable
            or PostgresErrorCodes.UndefinedFunction or PostgresErrorCodes.UndefinedObject)
        {
            // A catalog this pgstate does not know (a column or view gone in a newer server): name who asked.
            var index = e.BatchCommand is { } failed && batch.BatchCommands.IndexOf(failed) is var i and >= 0 ? i : Math.Min(current, _queries.Count - 1);
            throw new CatalogQueryException(_queries[index].Owner, e);
        }
    }
}

/// <summary>A declared catalog query the server refused (42703 undefined column, 42P01 undefined table …), with the module that declared it.</summary>
public sealed class CatalogQueryException(string? owner, PostgresException inner)
    : Exception($"the {owner ?? "engine"} module's catalog query failed: {inner.SqlState}: {inner.MessageText}", inner)
{
    public string? Owner { get; } = owner;
}
